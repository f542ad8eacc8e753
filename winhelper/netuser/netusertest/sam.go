// Package netusertest is an API-faithful fake of the Windows functions
// package netuser calls (netuser.API): a local SAM in memory that answers
// with the status codes the Windows documentation gives for each case
// (NERR_UserExists, NERR_UserNotFound, NERR_PasswordTooShort,
// ERROR_MEMBER_IN_ALIAS, ERROR_MEMBER_NOT_IN_ALIAS, ERROR_ACCESS_DENIED),
// plus LogonUser's answers (ERROR_LOGON_FAILURE, ERROR_ACCOUNT_DISABLED)
// for the accounts conformance suite's logins and WTS sessions and
// processes for EndSessions.
//
// What it models, from the documentation of NetUserAdd, NetUserSetInfo,
// NetUserDel, NetUserGetInfo, NetUserGetLocalGroups,
// NetLocalGroupAddMembers/DelMembers, LogonUserW, WTSEnumerateSessionsW
// and WTSLogoffSession: names compare case-insensitively; a new account
// gets a fresh SID that is never reused; deleting an account removes it
// from every local group; a disabled or locked account cannot log on; a
// successful logon sets usri4_last_logon. It does not model domain
// accounts, password history or complexity (only a minimum length).
package netusertest

import (
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jitkey/jitkey/winhelper/netuser"
)

// Config configures a SAM.
type Config struct {
	// MinPasswordLen is the password policy's minimum length (0: none).
	MinPasswordLen int
	// AdminsGroup is the local name of S-1-5-32-544 (default
	// "Administrators").
	AdminsGroup string
	// Now is the clock logons are recorded with (default time.Now).
	Now func() time.Time
	// StickyProcesses: processes of an account survive TerminateProcess
	// this many times (to test EndSessions giving up).
	StickyProcesses int
}

type user struct {
	name, fullName, sid string
	pw                  []byte
	flags               uint32
	lastLogon           uint32
}

// SAM is the fake. It is safe for concurrent use.
type SAM struct {
	cfg Config

	mu       sync.Mutex
	users    map[string]*user    // by lower-case name
	groups   map[string][]string // lower-case group name -> member SIDs
	nextRID  int
	sessions map[uint32]string // session id -> user name
	procs    map[uint32]string // pid -> SID
	nextID   uint32
	sticky   map[uint32]int
	denied   map[string]bool // op name -> ERROR_ACCESS_DENIED
}

var _ netuser.API = (*SAM)(nil)

// New returns an empty SAM with the Administrators and Users groups.
func New(cfg Config) *SAM {
	if cfg.AdminsGroup == "" {
		cfg.AdminsGroup = "Administrators"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &SAM{
		cfg:      cfg,
		users:    map[string]*user{},
		groups:   map[string][]string{strings.ToLower(cfg.AdminsGroup): nil, "users": nil},
		nextRID:  1001,
		sessions: map[uint32]string{},
		procs:    map[uint32]string{},
		nextID:   2,
		sticky:   map[uint32]int{},
		denied:   map[string]bool{},
	}
}

// Deny makes every later call of the named method (e.g. "UserAdd")
// return ERROR_ACCESS_DENIED, as for a caller without administrator
// rights; Deny(op, false) undoes it.
func (s *SAM) Deny(op string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[op] = deny
}

func (s *SAM) lookup(name string) *user { return s.users[strings.ToLower(name)] }

func (s *SAM) isDenied(op string) bool { return s.denied[op] }

// UserAdd implements netuser.API (NetUserAdd level 1).
func (s *SAM) UserAdd(name string, pw []byte, flags uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDenied("UserAdd") {
		return netuser.ErrorAccessDenied
	}
	if name == "" || len(name) > 20 || strings.ContainsAny(name, `"/\[]:|<>+=;,?*@`) {
		return netuser.NERRBadUsername
	}
	if s.lookup(name) != nil {
		return netuser.NERRUserExists
	}
	if _, isGroup := s.groups[strings.ToLower(name)]; isGroup {
		return netuser.NERRUserExists // a group of that name: NERR_GroupExists in reality; both are "taken"
	}
	if len(pw) < s.cfg.MinPasswordLen {
		return netuser.NERRPasswordTooShort
	}
	sid := fmt.Sprintf("S-1-5-21-1000-2000-3000-%d", s.nextRID)
	s.nextRID++
	s.users[strings.ToLower(name)] = &user{name: name, sid: sid, pw: slices.Clone(pw), flags: flags}
	return netuser.NERRSuccess
}

func (s *SAM) set(op, name string, f func(*user) uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDenied(op) {
		return netuser.ErrorAccessDenied
	}
	u := s.lookup(name)
	if u == nil {
		return netuser.NERRUserNotFound
	}
	return f(u)
}

// UserSetFullName implements netuser.API (NetUserSetInfo level 1011).
func (s *SAM) UserSetFullName(name, fullName string) uint32 {
	return s.set("UserSetFullName", name, func(u *user) uint32 { u.fullName = fullName; return 0 })
}

// UserSetPassword implements netuser.API (NetUserSetInfo level 1003).
func (s *SAM) UserSetPassword(name string, pw []byte) uint32 {
	return s.set("UserSetPassword", name, func(u *user) uint32 {
		if len(pw) < s.cfg.MinPasswordLen {
			return netuser.NERRPasswordTooShort
		}
		clear(u.pw)
		u.pw = slices.Clone(pw)
		return 0
	})
}

// UserSetFlags implements netuser.API (NetUserSetInfo level 1008).
// UF_NORMAL_ACCOUNT must stay set (the account type cannot change:
// ERROR_INVALID_PARAMETER).
func (s *SAM) UserSetFlags(name string, flags uint32) uint32 {
	return s.set("UserSetFlags", name, func(u *user) uint32 {
		if flags&netuser.UFNormalAccount == 0 {
			return netuser.ErrorInvalidParameter
		}
		u.flags = flags
		return 0
	})
}

// UserGetInfo implements netuser.API (NetUserGetInfo level 4).
func (s *SAM) UserGetInfo(name string) (netuser.UserInfo, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookup(name)
	if u == nil {
		return netuser.UserInfo{}, netuser.NERRUserNotFound
	}
	return netuser.UserInfo{Name: u.name, FullName: u.fullName, Flags: u.flags, SID: u.sid,
		LastLogon: u.lastLogon, AcctExpires: netuser.TimeqForever}, 0
}

// UserDel implements netuser.API (NetUserDel): the account leaves every
// local group.
func (s *SAM) UserDel(name string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDenied("UserDel") {
		return netuser.ErrorAccessDenied
	}
	u := s.lookup(name)
	if u == nil {
		return netuser.NERRUserNotFound
	}
	for g, members := range s.groups {
		s.groups[g] = slices.DeleteFunc(members, func(m string) bool { return m == u.sid })
	}
	clear(u.pw)
	delete(s.users, strings.ToLower(name))
	return 0
}

// UserLocalGroups implements netuser.API (NetUserGetLocalGroups level 0).
func (s *SAM) UserLocalGroups(name string) ([]string, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookup(name)
	if u == nil {
		return nil, netuser.NERRUserNotFound
	}
	var out []string
	for g, members := range s.groups {
		if slices.Contains(members, u.sid) {
			out = append(out, s.groupName(g))
		}
	}
	slices.Sort(out)
	return out, 0
}

func (s *SAM) groupName(lower string) string {
	if lower == strings.ToLower(s.cfg.AdminsGroup) {
		return s.cfg.AdminsGroup
	}
	return lower
}

func (s *SAM) member(op, group, sid string, add bool) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isDenied(op) {
		return netuser.ErrorAccessDenied
	}
	g := strings.ToLower(group)
	members, ok := s.groups[g]
	if !ok {
		return netuser.NERRGroupNotFound
	}
	has := slices.Contains(members, sid)
	switch {
	case add && has:
		return netuser.ErrorMemberInAlias
	case !add && !has:
		return netuser.ErrorMemberNotInAlias
	case add:
		s.groups[g] = append(members, sid)
	default:
		s.groups[g] = slices.DeleteFunc(members, func(m string) bool { return m == sid })
	}
	return 0
}

// LocalGroupAddMember implements netuser.API (NetLocalGroupAddMembers).
func (s *SAM) LocalGroupAddMember(group, sid string) uint32 {
	return s.member("LocalGroupAddMember", group, sid, true)
}

// LocalGroupDelMember implements netuser.API (NetLocalGroupDelMembers).
func (s *SAM) LocalGroupDelMember(group, sid string) uint32 {
	return s.member("LocalGroupDelMember", group, sid, false)
}

// AdminsGroup implements netuser.API.
func (s *SAM) AdminsGroup() (string, uint32) { return s.cfg.AdminsGroup, 0 }

// Sessions implements netuser.API (WTSEnumerateSessionsW).
func (s *SAM) Sessions() ([]netuser.Session, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []netuser.Session{{ID: 0, User: ""}} // session 0: services, no user
	for id, u := range s.sessions {
		out = append(out, netuser.Session{ID: id, User: u})
	}
	slices.SortFunc(out, func(a, b netuser.Session) int { return int(a.ID) - int(b.ID) })
	return out, 0
}

// LogoffSession implements netuser.API (WTSLogoffSession, synchronous):
// the session and every process started in it end.
func (s *SAM) LogoffSession(id uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.sessions[id]
	if !ok {
		return netuser.ErrorInvalidParameter
	}
	delete(s.sessions, id)
	if u := s.lookup(name); u != nil {
		for pid, sid := range s.procs {
			if sid == u.sid && s.sticky[pid] == 0 {
				delete(s.procs, pid)
			}
		}
	}
	return 0
}

// Processes implements netuser.API.
func (s *SAM) Processes() ([]netuser.Process, uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []netuser.Process{{PID: 4, SID: "S-1-5-18"}} // System
	for pid, sid := range s.procs {
		out = append(out, netuser.Process{PID: pid, SID: sid})
	}
	return out, 0
}

// TerminateProcess implements netuser.API.
func (s *SAM) TerminateProcess(pid uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pid == 4 {
		return netuser.ErrorAccessDenied
	}
	if _, ok := s.procs[pid]; !ok {
		return netuser.ErrorInvalidParameter
	}
	if s.sticky[pid] > 0 {
		s.sticky[pid]--
		return 0 // reported as terminated, still running (a process that respawns)
	}
	delete(s.procs, pid)
	return 0
}

// LogonUser is LogonUserW(name, ".", pw, LOGON32_LOGON_INTERACTIVE): it
// returns 0 and records the logon, ERROR_LOGON_FAILURE for an unknown
// account or wrong password (Windows does not say which),
// ERROR_ACCOUNT_DISABLED, or ERROR_ACCOUNT_LOCKED_OUT. A successful
// interactive logon starts a session with one process, as LogonUI does.
func (s *SAM) LogonUser(name string, pw []byte) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookup(name)
	if u == nil || subtle.ConstantTimeCompare(u.pw, pw) != 1 {
		return netuser.ErrorLogonFailure
	}
	if u.flags&netuser.UFAccountDisable != 0 {
		return netuser.ErrorAccountDisabled
	}
	if u.flags&netuser.UFLockout != 0 {
		return netuser.ErrorAccountLockedOut
	}
	u.lastLogon = uint32(s.cfg.Now().Unix())
	id := s.nextID
	s.nextID++
	s.sessions[id] = u.name
	s.procs[1000+id] = u.sid
	s.sticky[1000+id] = s.cfg.StickyProcesses
	return 0
}

// StartProcess adds a process running as name outside any session (a
// scheduled task of the account) and returns its pid.
func (s *SAM) StartProcess(name string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookup(name)
	if u == nil {
		return 0
	}
	pid := 5000 + s.nextID
	s.nextID++
	s.procs[pid] = u.sid
	s.sticky[pid] = s.cfg.StickyProcesses
	return pid
}

// Running reports how many sessions and processes of name exist.
func (s *SAM) Running(name string) (sessions, processes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookup(name)
	if u == nil {
		return 0, 0
	}
	for _, n := range s.sessions {
		if strings.EqualFold(n, name) {
			sessions++
		}
	}
	for _, sid := range s.procs {
		if sid == u.sid {
			processes++
		}
	}
	return sessions, processes
}

// Names lists the accounts.
func (s *SAM) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, u := range s.users {
		out = append(out, u.name)
	}
	slices.Sort(out)
	return out
}

// Admins returns the names of the accounts that are direct members of
// the Administrators group (S-1-5-32-544), sorted: the SAM's own record,
// read without the Backend.
func (s *SAM) Admins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sid := range s.groups[strings.ToLower(s.cfg.AdminsGroup)] {
		for _, u := range s.users {
			if u.sid == sid {
				out = append(out, u.name)
			}
		}
	}
	slices.Sort(out)
	return out
}
