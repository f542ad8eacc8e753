//go:build linux && cgo

/*
 * ipcc.c: cgo compiles only the C files of a package's own directory; this
 * one brings in the IPC codec that all C login surfaces share
 * (internal/ipcc), so that the tests here run the tile with that very
 * codec. The DLL (../dll/build.sh) compiles internal/ipcc/jkmsg.c itself.
 */
#include "../../../internal/ipcc/jkmsg.c"
