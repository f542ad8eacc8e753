/*
 * bcryptprimitives.dll for Wine 8 (tests only, never installed on
 * Windows): Go 1.22+ binaries call ProcessPrng, which Wine 8 lacks. This
 * shim fills the buffer from RtlGenRandom (advapi32 SystemFunction036).
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
