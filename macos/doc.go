// Package macos groups jitkey's macOS support; the code is in its
// subpackages: directory (the accounts.Backend over dscl, dseditgroup,
// pwpolicy, sysadminctl), authdb (the authorization database: install,
// repair after an OS update, restore), keychain (the vault key in the
// System keychain), plugin (the authorization plugin: its C core, tested
// here, and the mechanism built on a Mac), command (the runner every tool
// goes through), plist (XML property lists), mactest (a fake Mac for tests
// on Linux) and cmd/jitkey-macos (the helper the package runs). This
// package itself holds only the test that checks the package layout in
// packaging/macos against the code.
package macos
