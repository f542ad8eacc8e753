// Package packaging builds jitkey's Debian packages (make package) with
// nfpm, from nfpm-agent.yaml and nfpm-relay.yaml: the agent with its PAM
// module, hardened systemd unit and pam-auth-update profile, and the
// relay. It is a module of its own so that nfpm's dependencies stay out
// of jitkey's go.mod; its test builds both packages and checks what they
// install.
package packaging
