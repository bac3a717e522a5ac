//go:build !unix

package sse

// Elsewhere every write goes through the stream's writer goroutine.
const canTryWrite = false

func writeNow(uintptr, []byte) (int, error) { return 0, nil }

func isWouldBlock(error) bool { return true }
