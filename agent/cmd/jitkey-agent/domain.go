package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/jitkey/jitkey/agent/dcagent"
	"github.com/jitkey/jitkey/agent/domain"
	"github.com/jitkey/jitkey/agent/password"
)

// dcFlags are run's flags of the domain controller role.
type dcFlags struct {
	role, url, ca, serverName, bindDN, bindPWFile, ou, adminGroup, protectedUsers, upn *string
}

func domainFlags(fs *flag.FlagSet) *dcFlags {
	return &dcFlags{
		role:           fs.String("role", "workstation", "workstation, or dc: also manage JIT domain accounts over LDAPS (SPEC 11.7)"),
		url:            fs.String("ldaps-url", "", "dc role: the DC's LDAPS URL (ldaps://host:636; plain LDAP is refused)"),
		ca:             fs.String("ldaps-ca", "", "dc role: PEM file of the CA that issued the DC's LDAPS certificate (pinned)"),
		serverName:     fs.String("ldaps-server-name", "", "dc role: name the DC certificate must carry (default: the URL's host)"),
		bindDN:         fs.String("bind-dn", "", "dc role: DN the agent binds as"),
		bindPWFile:     fs.String("bind-password-file", "", "dc role: file holding the bind password (not group/world readable)"),
		ou:             fs.String("ou", "", "dc role: DN of the OU holding the JIT accounts"),
		adminGroup:     fs.String("admin-group", "", "dc role: DN of the group a session grants (e.g. Domain Admins)"),
		protectedUsers: fs.String("protected-users", "", "dc role: DN of the Protected Users group (recommended)"),
		upn:            fs.String("upn-suffix", "", "dc role: UPN suffix of the accounts (e.g. example.com)"),
	}
}

// directory returns the role's Directory, or nil for a workstation.
func (f *dcFlags) directory() (dcagent.Directory, error) {
	switch *f.role {
	case "workstation":
		return nil, nil
	case "dc":
	default:
		return nil, fmt.Errorf("unknown --role %q", *f.role)
	}
	if *f.ca == "" || *f.bindPWFile == "" {
		return nil, errors.New("--role dc needs --ldaps-ca and --bind-password-file")
	}
	pem, err := os.ReadFile(*f.ca)
	if err != nil {
		return nil, fmt.Errorf("read --ldaps-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("--ldaps-ca holds no PEM certificate")
	}
	st, err := os.Stat(*f.bindPWFile)
	if err != nil {
		return nil, fmt.Errorf("bind password file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, errors.New("bind password file is group or world readable")
	}
	pw, err := os.ReadFile(*f.bindPWFile)
	if err != nil {
		return nil, fmt.Errorf("bind password file: %w", err)
	}
	pw = bytes.TrimRight(pw, "\r\n")
	d, err := domain.New(domain.Config{
		URL: *f.url, ServerName: *f.serverName, RootCAs: pool, BindDN: *f.bindDN,
		BindPassword: password.FromBytes(pw), OU: *f.ou, AdminGroup: *f.adminGroup,
		ProtectedUsers: *f.protectedUsers, UPNSuffix: *f.upn,
	})
	clear(pw)
	if err != nil {
		return nil, err
	}
	return d, nil
}
