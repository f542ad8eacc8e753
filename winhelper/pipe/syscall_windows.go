package pipe

//sys	impersonateNamedPipeClient(pipe windows.Handle) (err error) = advapi32.ImpersonateNamedPipeClient
//sys	getNamedPipeServerProcessId(pipe windows.Handle, pid *uint32) (err error) = kernel32.GetNamedPipeServerProcessId
