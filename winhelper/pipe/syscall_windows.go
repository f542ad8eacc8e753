package pipe

//go:generate go run golang.org/x/sys/windows/mkwinsyscall -output zsyscall_windows.go syscall_windows.go

//sys	impersonateNamedPipeClient(pipe windows.Handle) (err error) = advapi32.ImpersonateNamedPipeClient
//sys	getNamedPipeServerProcessId(pipe windows.Handle, pid *uint32) (err error) = kernel32.GetNamedPipeServerProcessId
