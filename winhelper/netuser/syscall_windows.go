package netuser

//sys	netUserAdd(serverName *uint16, level uint32, buf *byte, parmErr *uint32) (neterr error) = netapi32.NetUserAdd
//sys	netUserSetInfo(serverName *uint16, userName *uint16, level uint32, buf *byte, parmErr *uint32) (neterr error) = netapi32.NetUserSetInfo
//sys	netUserDel(serverName *uint16, userName *uint16) (neterr error) = netapi32.NetUserDel
//sys	netUserGetLocalGroups(serverName *uint16, userName *uint16, level uint32, flags uint32, buf **byte, prefMaxLen uint32, entriesRead *uint32, totalEntries *uint32) (neterr error) = netapi32.NetUserGetLocalGroups
//sys	netLocalGroupAddMembers(serverName *uint16, groupName *uint16, level uint32, buf *byte, totalEntries uint32) (neterr error) = netapi32.NetLocalGroupAddMembers
//sys	netLocalGroupDelMembers(serverName *uint16, groupName *uint16, level uint32, buf *byte, totalEntries uint32) (neterr error) = netapi32.NetLocalGroupDelMembers
//sys	wtsQuerySessionInformation(server windows.Handle, session uint32, class uint32, buf **uint16, bytes *uint32) (err error) = wtsapi32.WTSQuerySessionInformationW
//sys	wtsLogoffSession(server windows.Handle, session uint32, wait bool) (err error) = wtsapi32.WTSLogoffSession
