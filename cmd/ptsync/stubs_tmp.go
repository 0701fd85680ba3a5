package main

import "context"

// Temporary until validate and emulator land (removed by the lead).
var (
	runValidate = notYet("validate")
	runEmulator = notYet("emulator")
)

var _ = context.Background
