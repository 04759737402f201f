package config

import "strconv"

// isWholeNumber reports whether s is a decimal number >= 0.
func isWholeNumber(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}
