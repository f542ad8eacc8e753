// Package pkgdoc holds the repository-wide test that every Go package in
// the module has a package doc comment (see pkgdoc_test.go).
package pkgdoc
