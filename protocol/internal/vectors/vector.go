// Package vectors defines jitkey's protocol test vectors (the JSON files in
// protocol/testdata) and generates them deterministically. The program
// protocol/internal/vectorgen writes them; protocol's TestVectors checks
// each file's outcome against the implementation.
package vectors

// Vector is one test case, stored as protocol/testdata/<Name>.json.
type Vector struct {
	Name        string  `json:"name"`
	Rule        string  `json:"rule,omitempty"` // "R-07": the SPEC.md MUST-reject rule it exercises
	Kind        string  `json:"kind"`           // what the input is and how it is checked (see Kinds)
	Description string  `json:"description"`
	Input       string  `json:"input"` // hex, except the TextKinds (the text itself)
	Context     Context `json:"context"`
	// Expect is "ok" or the name of the exported sentinel error of package
	// protocol the check must fail with (errors.Is), e.g. "ErrNonCanonical".
	Expect string `json:"expect"`
}

// TextKinds are the kinds whose input is text rather than hex bytes.
var TextKinds = map[string]bool{"qr": true, "enroll-token": true, "relay-addr": true, "peer-addr": true, "otp": true, "recovery-code": true}

// Kinds lists every vector kind with how a checker evaluates it.
var Kinds = map[string]string{
	"cbor":           "Unmarshal(input) into the protocol type named by context.type",
	"signed":         "DecodeSigned(input), then VerifyEd25519 or VerifyP256 (context.alg) as context.doc_type with context.key, decoding into context.type",
	"tech-cert":      "DecodeSigned(input), VerifyEd25519(DocTechCert, context.msp_key), TechCert.Valid(context.now)",
	"device-cert":    "DecodeSigned(input), VerifyEd25519(DocDeviceCert, context.msp_key), DeviceCert.Valid(context.now)",
	"authorize":      "verify context.policy, context.tech_cert (input) and context.device_cert with context.msp_key, check both validities at context.now, Policy.Check, Policy.Authorize",
	"device-check":   "verify context.policy and the device cert (input) with context.msp_key, DeviceCert.Valid(context.now), Policy.Check, Policy.CheckDevice (what a phone checks of a login request's device)",
	"policy-check":   "DecodeSigned(input), VerifyEd25519(DocPolicy, context.msp_key), Policy.Check",
	"policy-upgrade": "CheckPolicyUpgrade(context.held, context.next)",
	"approval":       "DecodeSigned(input), VerifyP256(DocApproval, context.key), Approval.Match(context.approval_expect at context.now)",
	"qr":             "DecodeQR(input text, context.now)",
	"handshake":      "run Initiate and RespondMessage with context.handshake; if context.handshake.tamper is msg1 or msg2, that message is replaced by input",
	"transport":      "complete context.handshake, then the responder Opens each of context.messages in order; the outcome is the first error",
	"e2e":            "ParseE2EFrame(input)",
	"ipc":            "ReadIPCFrame(input)",
	"enroll-token":   "DecodeEnrollToken(input text, context.now)",
	"msg":            "DecodeMsg(input, context.msg_type, new(context.type))",
	"kdf":            "Derive(context.secret, context.label, context.derive_context, len(input)) == input",
	"proof":          "DecodeMsg(input, context.msg_type) as EnrollRequest or PairRequest, then its possession proofs over ProofInput(kind, context.handshake_hash): IdentitySig (Ed25519, kind identity) and, for PairRequest, ApprovalSig (P-256 r||s over SHA-256, kind approval); a proof that does not verify is ErrBadSignature",
	"login-chain":    "a QR login from the code to the approval: DecodeQR(context.qr, context.now); psk and session id derived from its secret (qr/psk, qr/session-id); the e2e hello context.messages[0] names that session and carries message 1; the handshake context.handshake (psk fields empty: the derived psk; peer static and responder relay from the QR) gives msg1, msg2 and hash; then input, a Signed approval, verifies with context.key and matches serial context.approval_expect.serial, the QR's device and action, the derived session and the handshake hash h",
	"audit-chain":    "VerifyAuditChain(context.key, context.device_id, context.after_seq, context.after_hash, context.messages): each message a Signed DocAudit record; for an ok vector, Hash of each record == context.hashes; the outcome is the first error",
	"ipc-msg":        "ReadIPCFrame(input), then DecodeIPCMsg(body): its type byte == context.msg_type and its body the type named by context.type; the input is one whole frame (u32 length || type || CBOR)",
	"relay-frame":    "DecodeRelayFrame(input): exactly one relay frame (5-byte header and body, SPEC.md 12.2); when it succeeds, EncodeRelayFrame of the result == input",
	"relay-ticket":   "DecodeRelayPushTicket(input): the plaintext of a push ticket (SPEC.md 12.6); when it succeeds, it re-encodes to input",
	"relay-auth":     "RelayAuthMessage(context.secret, the TLS exporter) == context.output, and input is an Ed25519 signature over it by context.key",
	"relay-pin":      "RelayPin(input, a DER SubjectPublicKeyInfo) == context.output",
	"relay-addr":     "CheckRelayAddr(input text): the relay address grammar of SPEC.md section 2",
	"peer-addr":      "ParsePeerAddr(input text); when it succeeds, the address's String() == input",
	"mailbox":        "MailboxFor(input, an identity key) rendered as text == context.text",
	"fingerprint":    "the Fingerprint of the public key input, of kind context.key_kind (noise, identity, approval), rendered as text == context.text",
	"otp":            "SharedTechKey(context.secret, context.tech_id) == context.tech_key, SharedCodeKey(tech key, context.device_id) == context.code_key, TOTP(code key, context.now, context.period, context.digits) == input (text)",
	"domain-request": "DecodeMsg(input, MsgDomainRequest) as DomainRequest; verify context.policy with context.msp_key; VerifyDomainRequest with context.msp_key, that policy, the KK peer static key context.peer_static and context.now (SPEC.md 11.7 step 2)",
	"recovery-code":  "ParseRecoveryCode(input, text) == context.output (16 bytes) (SPEC.md 11.15, R-66)",
	"sign-in":        "DecodeMsg(input, MsgConsoleRequest, ConsoleRequest), then ConsoleRequest.Check(context.session, context.now) (SPEC.md 11.12, R-60)",
	"co-approval":    "verify context.policy, context.tech_cert (the second approver's), context.first_cert (the technician's) and context.device_cert with context.msp_key, Policy.Check, DeviceCert.Valid(context.now); then VerifyCoApproval(input, the approver's approval key, the certificates, device, policy and context.co_approval_expect at context.now) (SPEC.md 11.14, R-63, R-64)",
	"transfer":       "NewTransfer(context.msp_key), then Add the page of each of context.messages in order (the first decoded as context.msg_type: a PairResponse carries page 0; the others as PolicyPush), then Finish; the outcome is the first error",
}

// Context carries what a check needs besides the input. Byte strings are
// hex; times are Unix seconds.
type Context struct {
	Type           string          `json:"type,omitempty"`
	Now            int64           `json:"now,omitempty"`
	DocType        string          `json:"doc_type,omitempty"`
	Alg            string          `json:"alg,omitempty"` // "ed25519" or "p256"
	Key            string          `json:"key,omitempty"`
	MSPKey         string          `json:"msp_key,omitempty"`
	TechCert       string          `json:"tech_cert,omitempty"`
	DeviceCert     string          `json:"device_cert,omitempty"`
	Policy         string          `json:"policy,omitempty"`
	Held           uint64          `json:"held,omitempty"`
	Next           uint64          `json:"next,omitempty"`
	ApprovalExpect *ApprovalExpect `json:"approval_expect,omitempty"`
	Handshake      *Handshake      `json:"handshake,omitempty"`
	Messages       []string        `json:"messages,omitempty"`
	Plaintexts     []string        `json:"plaintexts,omitempty"`
	MsgType        uint8           `json:"msg_type,omitempty"`
	Label          string          `json:"label,omitempty"`
	Secret         string          `json:"secret,omitempty"`
	DeriveContext  string          `json:"derive_context,omitempty"`
	TechID         string          `json:"tech_id,omitempty"`
	DeviceID       string          `json:"device_id,omitempty"`
	TechKey        string          `json:"tech_key,omitempty"`
	CodeKey        string          `json:"code_key,omitempty"`
	AfterSeq       uint64          `json:"after_seq,omitempty"`
	AfterHash      string          `json:"after_hash,omitempty"`
	Hashes         []string        `json:"hashes,omitempty"`
	QR             string          `json:"qr,omitempty"`
	HandshakeHash  string          `json:"handshake_hash,omitempty"`
	Output         string          `json:"output,omitempty"`
	Text           string          `json:"text,omitempty"`
	KeyKind        string          `json:"key_kind,omitempty"`
	Digits         int             `json:"digits,omitempty"`
	Period         int             `json:"period,omitempty"`
	PeerStatic     string          `json:"peer_static,omitempty"` // the KK peer's static public key (domain-request)
	Session        string          `json:"session,omitempty"`
	// FirstCert is the signed certificate of the technician whose login a
	// co-approval answers; CoApprovalExpect the request it answers.
	FirstCert        string            `json:"first_cert,omitempty"`
	CoApprovalExpect *CoApprovalExpect `json:"co_approval_expect,omitempty"`
}

// CoApprovalExpect mirrors the request fields of
// protocol.CoApprovalExpect (the certificates, device and policy are in
// the Context).
type CoApprovalExpect struct {
	Session       string `json:"session"`
	HandshakeHash string `json:"handshake_hash"`
	First         string `json:"first"` // Signed.Hash of the technician's approval
	Action        uint8  `json:"action"`
	Account       string `json:"account"`
}

// ApprovalExpect mirrors protocol.ApprovalExpect. Accounts lists the
// account kinds offered; empty means only AccountDefault.
type ApprovalExpect struct {
	Serial        uint64 `json:"serial"`
	DeviceID      string `json:"device_id"`
	Session       string `json:"session"`
	HandshakeHash string `json:"handshake_hash"`
	Action        uint8  `json:"action"`
	Number        uint16 `json:"number"`
	Accounts      []int  `json:"accounts,omitempty"`       // numbers, not bytes: a JSON array
	RequireReason bool   `json:"require_reason,omitempty"` // the policy's RequireReason (6.3)
	TicketPattern string `json:"ticket_pattern,omitempty"` // the policy's TicketPattern (6.3)
}

// Side is one party's handshake configuration. Static is the X25519
// private key; Ephemeral the 32 bytes its Rand yields (the ephemeral
// private key).
type Side struct {
	Flow           string `json:"flow"`
	Static         string `json:"static"`
	PeerStatic     string `json:"peer_static,omitempty"`
	PSK            string `json:"psk,omitempty"`
	InitiatorRelay string `json:"initiator_relay"`
	ResponderRelay string `json:"responder_relay"`
	Ephemeral      string `json:"ephemeral"`
}

// Handshake describes a two-message Noise handshake. For a successful
// handshake Msg1, Msg2 and Hash are the expected bytes.
type Handshake struct {
	Initiator Side   `json:"initiator"`
	Responder Side   `json:"responder"`
	Tamper    string `json:"tamper,omitempty"` // "", "msg1" or "msg2"
	Msg1      string `json:"msg1,omitempty"`
	Msg2      string `json:"msg2,omitempty"`
	Hash      string `json:"hash,omitempty"`
}
