package winudp

//sys	wsaSelect(nfds int32, readfds *fdSet, writefds *fdSet, exceptfds *fdSet, timeout *timeval) (n int32, err error) [failretval==-1] = ws2_32.select
