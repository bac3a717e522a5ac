package testenv

import "syscall"

// procAttr makes the kernel kill a replica if the test process dies first
// (a timeout's panic, a SIGKILL), so no replica outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
