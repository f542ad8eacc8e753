//go:build windows

package netuser

import (
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// NewSystemAPI returns the API that calls Windows on the local computer.
// The caller needs administrator rights (the agent runs as SYSTEM).
func NewSystemAPI() (API, error) { return systemAPI{}, nil }

type systemAPI struct{}

// code extracts the status code of an error from a generated stub.
func code(err error) uint32 {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return uint32(e)
	}
	return ErrorInvalidParameter
}

func utf16(s string) (*uint16, uint32) {
	p, err := windows.UTF16PtrFromString(s)
	if err != nil {
		return nil, ErrorInvalidParameter
	}
	return p, 0
}

// utf16Secret converts a password to a NUL-terminated UTF-16 buffer the
// caller must clear.
func utf16Secret(pw []byte) []uint16 {
	out := make([]uint16, 0, len(pw)+1)
	for _, r := range string(pw) { // generated passwords are ASCII
		out = append(out, uint16(r))
	}
	return append(out, 0)
}

// userInfo1 is USER_INFO_1 (lmaccess.h).
type userInfo1 struct {
	name        *uint16
	password    *uint16
	passwordAge uint32
	priv        uint32
	homeDir     *uint16
	comment     *uint16
	flags       uint32
	scriptPath  *uint16
}

const userPrivUser = 1 // USER_PRIV_USER

func (systemAPI) UserAdd(name string, pw []byte, flags uint32) uint32 {
	n, c := utf16(name)
	if c != 0 {
		return c
	}
	p := utf16Secret(pw)
	defer clear(p)
	ui := userInfo1{name: n, password: &p[0], priv: userPrivUser, flags: flags}
	var parm uint32
	return code(netUserAdd(nil, 1, (*byte)(unsafe.Pointer(&ui)), &parm))
}

func setInfo(name string, level uint32, buf unsafe.Pointer) uint32 {
	n, c := utf16(name)
	if c != 0 {
		return c
	}
	var parm uint32
	return code(netUserSetInfo(nil, n, level, (*byte)(buf), &parm))
}

func (systemAPI) UserSetFullName(name, fullName string) uint32 {
	f, c := utf16(fullName)
	if c != 0 {
		return c
	}
	ui := struct{ fullName *uint16 }{f} // USER_INFO_1011
	return setInfo(name, 1011, unsafe.Pointer(&ui))
}

func (systemAPI) UserSetPassword(name string, pw []byte) uint32 {
	p := utf16Secret(pw)
	defer clear(p)
	ui := struct{ password *uint16 }{&p[0]} // USER_INFO_1003
	return setInfo(name, 1003, unsafe.Pointer(&ui))
}

func (systemAPI) UserSetFlags(name string, flags uint32) uint32 {
	ui := struct{ flags uint32 }{flags} // USER_INFO_1008
	return setInfo(name, 1008, unsafe.Pointer(&ui))
}

// userInfo4 is USER_INFO_4 (lmaccess.h).
type userInfo4 struct {
	name           *uint16
	password       *uint16
	passwordAge    uint32
	priv           uint32
	homeDir        *uint16
	comment        *uint16
	flags          uint32
	scriptPath     *uint16
	authFlags      uint32
	fullName       *uint16
	usrComment     *uint16
	parms          *uint16
	workstations   *uint16
	lastLogon      uint32
	lastLogoff     uint32
	acctExpires    uint32
	maxStorage     uint32
	unitsPerWeek   uint32
	logonHours     *byte
	badPwCount     uint32
	numLogons      uint32
	logonServer    *uint16
	countryCode    uint32
	codePage       uint32
	userSID        *windows.SID
	primaryGroupID uint32
	profile        *uint16
	homeDirDrive   *uint16
	passwordExpire uint32
}

func (systemAPI) UserGetInfo(name string) (UserInfo, uint32) {
	n, c := utf16(name)
	if c != 0 {
		return UserInfo{}, c
	}
	var buf *byte
	if c := code(windows.NetUserGetInfo(nil, n, 4, &buf)); c != 0 {
		return UserInfo{}, c
	}
	defer windows.NetApiBufferFree(buf)
	ui := (*userInfo4)(unsafe.Pointer(buf))
	out := UserInfo{
		Name:        windows.UTF16PtrToString(ui.name),
		FullName:    windows.UTF16PtrToString(ui.fullName),
		Flags:       ui.flags,
		LastLogon:   ui.lastLogon,
		AcctExpires: ui.acctExpires,
	}
	if ui.userSID != nil {
		out.SID = ui.userSID.String()
	}
	return out, 0
}

func (systemAPI) UserDel(name string) uint32 {
	n, c := utf16(name)
	if c != 0 {
		return c
	}
	return code(netUserDel(nil, n))
}

func (systemAPI) UserLocalGroups(name string) ([]string, uint32) {
	n, c := utf16(name)
	if c != 0 {
		return nil, c
	}
	var buf *byte
	var read, total uint32
	const maxPreferred = 0xFFFFFFFF // MAX_PREFERRED_LENGTH
	if c := code(netUserGetLocalGroups(nil, n, 0, 0, &buf, maxPreferred, &read, &total)); c != 0 {
		return nil, c
	}
	defer windows.NetApiBufferFree(buf)
	entries := unsafe.Slice((**uint16)(unsafe.Pointer(buf)), read) // LOCALGROUP_USERS_INFO_0
	out := make([]string, 0, read)
	for _, e := range entries {
		out = append(out, windows.UTF16PtrToString(e))
	}
	return out, 0
}

func member(group, sid string, add bool) uint32 {
	g, c := utf16(group)
	if c != 0 {
		return c
	}
	s, err := windows.StringToSid(sid)
	if err != nil {
		return code(err)
	}
	info := struct{ sid *windows.SID }{s} // LOCALGROUP_MEMBERS_INFO_0
	if add {
		return code(netLocalGroupAddMembers(nil, g, 0, (*byte)(unsafe.Pointer(&info)), 1))
	}
	return code(netLocalGroupDelMembers(nil, g, 0, (*byte)(unsafe.Pointer(&info)), 1))
}

func (systemAPI) LocalGroupAddMember(group, sid string) uint32 { return member(group, sid, true) }

func (systemAPI) LocalGroupDelMember(group, sid string) uint32 { return member(group, sid, false) }

func (systemAPI) AdminsGroup() (string, uint32) {
	sid, err := windows.CreateWellKnownSid(windows.WinBuiltinAdministratorsSid)
	if err != nil {
		return "", code(err)
	}
	name, _, _, err := sid.LookupAccount("")
	if err != nil {
		return "", code(err)
	}
	return name, 0
}

const wtsUserName = 5 // WTS_INFO_CLASS WTSUserName

func (systemAPI) Sessions() ([]Session, uint32) {
	var p *windows.WTS_SESSION_INFO
	var n uint32
	if err := windows.WTSEnumerateSessions(0, 0, 1, &p, &n); err != nil {
		return nil, code(err)
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(p)))
	out := make([]Session, 0, n)
	for _, s := range unsafe.Slice(p, n) {
		var buf *uint16
		var size uint32
		var user string
		if wtsQuerySessionInformation(0, s.SessionID, wtsUserName, &buf, &size) == nil {
			user = windows.UTF16PtrToString(buf)
			windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
		}
		out = append(out, Session{ID: s.SessionID, User: user})
	}
	return out, 0
}

func (systemAPI) LogoffSession(id uint32) uint32 { return code(wtsLogoffSession(0, id, true)) }

func (systemAPI) Processes() ([]Process, uint32) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, code(err)
	}
	defer windows.CloseHandle(snap)
	var out []Process
	e := windows.ProcessEntry32{Size: uint32(unsafe.Sizeof(windows.ProcessEntry32{}))}
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		out = append(out, Process{PID: e.ProcessID, SID: processSID(e.ProcessID)})
	}
	return out, 0
}

// processSID returns the SID of pid's token user, or "".
func processSID(pid uint32) string {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return ""
	}
	defer windows.CloseHandle(h)
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return ""
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return ""
	}
	return u.User.Sid.String()
}

func (systemAPI) TerminateProcess(pid uint32) uint32 {
	h, err := windows.OpenProcess(windows.PROCESS_TERMINATE, false, pid)
	if err != nil {
		return code(err)
	}
	defer windows.CloseHandle(h)
	return code(windows.TerminateProcess(h, 1))
}
