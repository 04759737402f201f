//go:build !unix

package joblog

// oNoFollow is not available here; the regular-file check after opening
// still refuses anything but a regular file for reading.
const oNoFollow = 0
