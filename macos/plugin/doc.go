// Package plugin holds jitkey's macOS authorization plugin
// (JitkeyLogin.bundle): its platform-independent C core in core/, the
// mechanism (C entry points in mechanism/mechanism.c, the AppKit window in
// mechanism/ui_appkit.m) and the Makefile that builds the bundle on a
// Mac. This Go package only carries the test that compiles the
// mechanism's C half on Linux against declarations transcribed from
// Apple's documentation (mechanism/sdkstub).
package plugin
