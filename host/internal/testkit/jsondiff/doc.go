// Package jsondiff compares decoded JSON values field by field, for golden
// file tests: a renamed, missing, added or retyped field is a difference,
// and each difference names its path.
//
// It compares; it does not read golden files or decide what to refresh.
package jsondiff
