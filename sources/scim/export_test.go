package scim

// SetMaxListed lowers the bound on one list for a test and returns what
// puts it back.
func SetMaxListed(n int) (restore func()) {
	old := maxListed
	maxListed = n
	return func() { maxListed = old }
}
