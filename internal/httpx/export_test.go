package httpx

// SeedErrors is seedErrors for the external tests, whose servers answer
// with the seed's error body.
var SeedErrors = seedErrors
