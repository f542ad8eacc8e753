// agentlink.cpp: the pipe to the agent (SPEC.md 5.6/5.7, Windows
// transport). The pipe must be served by SYSTEM: the provider checks the
// server process's token user before it sends a byte (an agent that is
// down leaves the name free for anyone to create).
#include <new>
#include <string.h>

#include "provider.h"

#define WM_JK_MSG (WM_APP + 1)
#define WM_JK_END (WM_APP + 2)

namespace {

const wchar_t kKey[] = L"SOFTWARE\\jitkey\\CredentialProvider";
const wchar_t kDefaultPipe[] = L"\\\\.\\pipe\\jitkey-agent";

DWORD reg_dword(const wchar_t *name)
{
	DWORD v = 0, size = sizeof v;
	if (RegGetValueW(HKEY_LOCAL_MACHINE, kKey, name, RRF_RT_REG_DWORD, nullptr, &v, &size) != ERROR_SUCCESS)
		return 0;
	return v;
}

void pipe_name(wchar_t *out, DWORD cap)
{
	DWORD size = cap * sizeof(wchar_t);
	if (RegGetValueW(HKEY_LOCAL_MACHINE, kKey, L"Pipe", RRF_RT_REG_SZ, nullptr, out, &size) != ERROR_SUCCESS ||
	    wcsncmp(out, L"\\\\.\\pipe\\", 9) != 0)
		lstrcpynW(out, kDefaultPipe, int(cap));
}

// token_user_is compares a process token's user with SYSTEM, or with
// this process's own user when same_user is set (the Wine test's
// setting, HKLM\SOFTWARE\jitkey\CredentialProvider TestAllowSameUser=1,
// which only an administrator can write; LogonUI runs as SYSTEM anyway).
bool server_allowed(HANDLE pipe, bool same_user)
{
	ULONG pid = 0;
	if (!GetNamedPipeServerProcessId(pipe, &pid))
		return false;
	HANDLE proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
	if (proc == nullptr)
		return false;
	bool ok = false;
	HANDLE tok = nullptr, self = nullptr;
	union {
		TOKEN_USER u;
		BYTE b[SECURITY_MAX_SID_SIZE + sizeof(TOKEN_USER)];
	} su = {}, me = {};
	DWORD n = 0;
	if (OpenProcessToken(proc, TOKEN_QUERY, &tok) && GetTokenInformation(tok, TokenUser, &su, sizeof su, &n)) {
		BYTE sys[SECURITY_MAX_SID_SIZE];
		DWORD sn = sizeof sys;
		if (CreateWellKnownSid(WinLocalSystemSid, nullptr, sys, &sn) && EqualSid(su.u.User.Sid, sys))
			ok = true;
		else if (same_user && OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &self) &&
			 GetTokenInformation(self, TokenUser, &me, sizeof me, &n) && EqualSid(su.u.User.Sid, me.u.User.Sid))
			ok = true;
	}
	if (self)
		CloseHandle(self);
	if (tok)
		CloseHandle(tok);
	CloseHandle(proc);
	return ok;
}

} // namespace

AgentLink::AgentLink() { InitializeCriticalSection(&wmu_); }

AgentLink::~AgentLink()
{
	Stop();
	DeleteCriticalSection(&wmu_);
}

bool AgentLink::Start(HWND hwnd, const uint8_t *begin, size_t n)
{
	Stop();
	if (n == 0 || n > sizeof begin_)
		return false;
	hwnd_ = hwnd;
	refused_ = false;
	memcpy(begin_, begin, n);
	begin_len_ = n;
	stop_ = CreateEventW(nullptr, TRUE, FALSE, nullptr);
	if (stop_ == nullptr)
		return false;
	thread_ = CreateThread(nullptr, 0, Run, this, 0, nullptr);
	return thread_ != nullptr;
}

void AgentLink::Stop()
{
	if (thread_) {
		SetEvent(stop_);
		EnterCriticalSection(&wmu_);
		if (pipe_ != INVALID_HANDLE_VALUE)
			CancelIoEx(pipe_, nullptr);
		LeaveCriticalSection(&wmu_);
		WaitForSingleObject(thread_, INFINITE);
		CloseHandle(thread_);
		thread_ = nullptr;
	}
	if (stop_) {
		CloseHandle(stop_);
		stop_ = nullptr;
	}
	EnterCriticalSection(&wmu_);
	if (pipe_ != INVALID_HANDLE_VALUE) {
		CloseHandle(pipe_);
		pipe_ = INVALID_HANDLE_VALUE;
	}
	LeaveCriticalSection(&wmu_);
}

void AgentLink::DeleteBody(WPARAM p, LPARAM n)
{
	uint8_t *b = reinterpret_cast<uint8_t *>(p);
	if (b) {
		SecureZeroMemory(b, size_t(n));
		delete[] b;
	}
}

DWORD WINAPI AgentLink::Run(void *self) { return static_cast<AgentLink *>(self)->Loop(); }

bool AgentLink::Connect()
{
	wchar_t name[128];
	pipe_name(name, 128);
	for (int i = 0; i < 20; i++) {
		HANDLE h = CreateFileW(name, GENERIC_READ | FILE_WRITE_DATA, 0, nullptr, OPEN_EXISTING,
				       FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, nullptr);
		if (h != INVALID_HANDLE_VALUE) {
			if (!server_allowed(h, reg_dword(L"TestAllowSameUser") == 1)) {
				CloseHandle(h);
				return false;
			}
			EnterCriticalSection(&wmu_);
			pipe_ = h;
			LeaveCriticalSection(&wmu_);
			return true;
		}
		DWORD err = GetLastError();
		refused_ = err == ERROR_ACCESS_DENIED; // not SYSTEM: SPEC.md 5.7 Windows
		if (err != ERROR_PIPE_BUSY)
			return false;
		if (WaitForSingleObject(stop_, 100) == WAIT_OBJECT_0)
			return false;
	}
	return false;
}

// ReadFull reads exactly n bytes, or fails on stop, error or end.
bool AgentLink::ReadFull(uint8_t *p, size_t n)
{
	while (n > 0) {
		OVERLAPPED ov = {};
		ov.hEvent = CreateEventW(nullptr, TRUE, FALSE, nullptr);
		if (ov.hEvent == nullptr)
			return false;
		DWORD got = 0;
		BOOL ok = ReadFile(pipe_, p, DWORD(n), &got, &ov);
		if (!ok && GetLastError() == ERROR_IO_PENDING) {
			HANDLE hs[2] = {ov.hEvent, stop_};
			DWORD w = WaitForMultipleObjects(2, hs, FALSE, 600000); // SPEC: at most 10 min per message
			if (w != WAIT_OBJECT_0)
				CancelIoEx(pipe_, &ov);
			ok = GetOverlappedResult(pipe_, &ov, &got, TRUE) && w == WAIT_OBJECT_0;
		}
		CloseHandle(ov.hEvent);
		if (!ok || got == 0)
			return false;
		p += got;
		n -= got;
	}
	return true;
}

bool AgentLink::Send(const uint8_t *body, size_t n)
{
	if (n == 0 || n > JK_MAX_FRAME)
		return false;
	uint8_t *frame = new (std::nothrow) uint8_t[n + 4];
	if (frame == nullptr)
		return false;
	frame[0] = uint8_t(n >> 24);
	frame[1] = uint8_t(n >> 16);
	frame[2] = uint8_t(n >> 8);
	frame[3] = uint8_t(n);
	memcpy(frame + 4, body, n);
	bool sent = false;
	EnterCriticalSection(&wmu_);
	if (pipe_ != INVALID_HANDLE_VALUE) {
		OVERLAPPED ov = {};
		ov.hEvent = CreateEventW(nullptr, TRUE, FALSE, nullptr);
		DWORD put = 0;
		if (ov.hEvent) {
			BOOL ok = WriteFile(pipe_, frame, DWORD(n + 4), &put, &ov);
			if (!ok && GetLastError() == ERROR_IO_PENDING) {
				if (WaitForSingleObject(ov.hEvent, 10000) != WAIT_OBJECT_0)
					CancelIoEx(pipe_, &ov);
				ok = GetOverlappedResult(pipe_, &ov, &put, TRUE);
			}
			sent = ok && put == n + 4;
			CloseHandle(ov.hEvent);
		}
	}
	LeaveCriticalSection(&wmu_);
	SecureZeroMemory(frame, n + 4); // a Code message holds the offline code
	delete[] frame;
	return sent;
}

DWORD AgentLink::Loop()
{
	if (!Connect()) {
		PostMessageW(hwnd_, WM_JK_END, refused_ ? 1 : 0, 0);
		return 0;
	}
	if (!Send(begin_, begin_len_)) {
		PostMessageW(hwnd_, WM_JK_END, 0, 0);
		return 0;
	}
	for (;;) {
		uint8_t len[4];
		if (!ReadFull(len, 4))
			break;
		size_t n = size_t(len[0]) << 24 | size_t(len[1]) << 16 | size_t(len[2]) << 8 | len[3];
		if (n == 0 || n > JK_MAX_FRAME) // checked before allocating
			break;
		uint8_t *body = new (std::nothrow) uint8_t[n];
		if (body == nullptr)
			break;
		if (!ReadFull(body, n)) {
			AgentLink::DeleteBody(WPARAM(body), LPARAM(n));
			break;
		}
		if (!PostMessageW(hwnd_, WM_JK_MSG, WPARAM(body), LPARAM(n))) {
			AgentLink::DeleteBody(WPARAM(body), LPARAM(n));
			break;
		}
	}
	PostMessageW(hwnd_, WM_JK_END, 0, 0);
	return 0;
}
