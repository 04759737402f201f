// Command oldproto is a test fixture: a go-plugin plugin that speaks
// version 1 of Berth's plugin protocol only, so that a host of version 2
// must refuse it with a message naming the file.
//
// It is a test fixture only.
package main
