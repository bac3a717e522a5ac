//go:build unix

package sse

import (
	"errors"
	"syscall"
)

const canTryWrite = true

func writeNow(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

func isWouldBlock(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR)
}
