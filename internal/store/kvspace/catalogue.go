package kvspace

import "time"

// The catalogue: every namespace of the key/value space, once. Values
// whose Go type a feature owns are bound by that feature with JSON[T];
// the others are typed here. Prefixes are stored bytes: changing one
// orphans every stored entry under it, so they never change.

func fixed(name, key string) Space {
	return Space{name: name, prefix: key, shape: shapeFixed}
}

func segments(name, prefix string, minParts, maxParts int) Space {
	return Space{name: name, prefix: prefix, shape: shapeSegments, minParts: minParts, maxParts: maxParts}
}

func hashed(name, prefix string) Space {
	return Space{name: name, prefix: prefix, shape: shapeHashed, minParts: 1, maxParts: 1}
}

// describe completes a space with what the catalogue says of it.
func (s Space) describe(holds, value string, expiry Expiry, expires, writer string, uses Use) Space {
	s.holds, s.value, s.expiry, s.expires, s.writer, s.uses = holds, value, expiry, expires, writer, uses
	return s
}

func (s Space) example(value string, id ...string) Space {
	s.sampleID, s.sample = id, []byte(value)
	return s
}

const sampleTime = `"2026-01-02T03:04:05.123456Z"`

// OpenID provider (package oidc).
var (
	OIDCKeyring = fixed("oidc-keyring", "oidc/keyring").
			describe("the provider's token signing keys (private keys, PKCS #8 DER) with when each was made and signs from",
			"[]oidc.keyRecord as JSON", Never, "never; retired keys are dropped from the ring", "oidc", UseCreateOnly|UseUpdate).
		example(`[{"kid":"3q2-7wAAAAAAAAAA","alg":"ES256","private":"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg","created_at":` + sampleTime + `,"sign_from":` + sampleTime + `}]`)
	OIDCCode = hashed("oidc-code", "oidc/code/").
			describe("authorization codes, under the hash of the code: the grant they redeem for and whether one was redeemed",
			"oidc.codeRecord as JSON", Fixed, "code lifetime (oidc code_lifetime)", "oidc", UseCreateOnly|UseUpdate).
		example(`{"client_id":"app","redirect_uri":"https://app.example/cb","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","grant_id":"g1","auth":{"user_id":"u1","auth_time":`+sampleTime+`,"acr":"mfa","amr":["pwd","otp"],"scope":["openid"]}}`, "code-value")
	OIDCGrant = segments("oidc-grant", "oidc/grant/", 1, 1).
			describe("grants (one sign-in of a user to a client): every token minted from one is revoked with it",
			"oidc.grantRecord as JSON", Fixed, "the longest token lifetime", "oidc", UseCreateOnly|UseUpdate).
		example(`{"client_id":"app","user_id":"u1","created_at":`+sampleTime+`,"revoked":true,"reason":"refresh-reuse"}`, "Zm9vYmFyYmF6cXV4MTIzNA")
	OIDCRefresh = hashed("oidc-refresh", "oidc/refresh/").
			describe("refresh tokens, under the hash of the token: the grant, the proofs they carry, whether one was used",
			"oidc.refreshRecord as JSON", Fixed, "refresh token lifetime from the grant's creation", "oidc", UseCreateOnly|UseUpdate).
		example(`{"client_id":"app","grant_id":"g1","auth":{"user_id":"u1","auth_time":`+sampleTime+`,"scope":["openid","offline_access"]},"used":true}`, "refresh-token-value")
	OIDCRevokedToken = Namespace[Mark]{Space: segments("oidc-revoked-token", "oidc/revoked/", 1, 1).
				describe("access tokens revoked before they expire, by jti", `Mark, stored as "1"`, Fixed,
			"the token's own expiry", "oidc", UseCreateOnly).example("1", "jti-1"), codec: markCodec([]byte("1"))}
	OIDCAssertion = Namespace[Mark]{Space: hashed("oidc-assertion", "oidc/assertion/").
			describe("client assertions (private_key_jwt) already used, under the hash of client id and jti", `Mark, stored as "1"`, Fixed,
			"the assertion's expiry plus the allowed clock skew", "oidc", UseCreateOnly).example("1", "app|jti-1"), codec: markCodec([]byte("1"))}
	OIDCDeviceCode = hashed("oidc-device-code", "oidc/device/code/").
			describe("device authorizations (RFC 8628), under the hash of the device code: client, scopes, polling, the user's answer and the proofs it carries",
			"oidc.deviceRecord as JSON", Fixed, "the device code lifetime (oidc device.lifetime) plus the expired-answer grace", "oidc", UseCreateOnly|UseUpdate|UseQuota).
		example(`{"client_id":"cli","scope":["openid"],"created_at":`+sampleTime+`,"expires_at":`+sampleTime+`,"interval":5,"last_poll":`+sampleTime+`,"status":"approved","auth":{"user_id":"u1","auth_time":`+sampleTime+`,"acr":"mfa","amr":["pwd","otp"],"scope":["openid"]},"answered_at":`+sampleTime+`}`, "device-code-value")
	OIDCDeviceUser = hashed("oidc-device-user", "oidc/device/user/").
			describe("user codes of device authorizations, under the hash of the code: the hash of the device code they stand for",
			"oidc.userCodeRecord as JSON", Fixed, "the device code lifetime (oidc device.lifetime) plus the expired-answer grace", "oidc", UseCreateOnly|UseQuota).
		example(`{"device":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`, "BCDFGHJK")
	OIDCDeviceRate = Namespace[int64]{Space: segments("oidc-device-rate", "oidc/device/rate/", 2, 2).
			describe("device authorizations started per client address and window: address hash, window start",
											"int64 in decimal", Fixed, "the end of the window", "oidc", UseCreateOnly|UseUpdate).
		example("3", "00112233445566778899aabbccddeeff", "1767322800"), codec: counterCodec()}
	OIDCClient = segments("oidc-client", "oidc/clients/", 1, 1).
			describe("OIDC clients added through the console, API or command line (configured ones are not stored)",
			"oidc.Client as JSON", Never, "never; removed by an administrator", "oidc", UseCreateOnly|UseList).
		example(`{"id":"app","name":"App","auth_method":"client_secret_basic","secret_sha256":"6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b","redirect_uris":["https://app.example/cb"],"grant_types":["authorization_code","refresh_token"],"created_at":`+sampleTime+`}`, "app")
)

// Policy documents (package admin).
var (
	PolicyDocument = segments("policy-document", "policy/doc/", 1, 1).
			describe("policy documents made in the console or API before releases (policy-release) kept them; moved into production's release when it is first read", "admin.Document as JSON", Never,
			"moved into the release, then deleted", "admin", UseCreateOnly|UseUpdate|UseList).
		example(`{"name":"mfa-for-admins","yaml":"policies: []\n","version":2,"updated_at":`+sampleTime+`,"updated_by":"user:alice"}`, "mfa-for-admins")
	PolicyEnvironmentDocument = segments("policy-environment-document", "policy/env/", 2, 2).
					describe("policy documents of a policy environment other than production, by environment and name, before releases kept them; moved into the environment's release when it is first read", "admin.Document as JSON", Never,
			"moved into the release, then deleted", "admin", UseCreateOnly|UseUpdate|UseList).
		example(`{"name":"mfa-for-admins","yaml":"policies: []\n","version":1,"updated_at":`+sampleTime+`,"updated_by":"user:alice"}`, "staging", "mfa-for-admins")
	PolicyRelease = segments("policy-release", "policy/release/", 1, 1).
			describe("per policy environment, its stored policy documents as one release: the whole set, its version and the change that made it; every change is one compare-and-swap of it",
			"admin.Release as JSON", Never, "never", "admin", UseCreateOnly|UseUpdate).
		example(`{"env":"production","version":3,"documents":[{"name":"mfa-for-admins","yaml":"policies: []\n","version":2,"updated_at":`+sampleTime+`,"updated_by":"user:alice"}],"action":"policy.update","target":"mfa-for-admins","actor":"user:alice","at":`+sampleTime+`}`, "production")
	PolicyHistory = segments("policy-history", "policy/history/", 2, 2).
			describe("the earlier releases of a policy environment, by environment and zero-padded version, for the history and rollbacks",
			"admin.Release as JSON", Never, "the last admin.MaxHistory releases of each environment are kept for rollbacks; each change deletes the one that falls out", "admin", UseCreateOnly|UseList).
		example(`{"env":"production","version":2,"documents":[],"action":"policy.delete","target":"old","actor":"user:alice","at":`+sampleTime+`}`, "production", "000000000002")
	PolicyHistoryIndex = segments("policy-history-index", "policy/history-index/", 2, 2).
				describe("a line per release of a policy environment: its version, the change, and each document's name and version without its text, so listing the history never reads every set",
			"admin.Release as JSON, documents without their YAML", Never, "deleted with its release in the history", "admin", UseCreateOnly|UseList).
		example(`{"env":"production","version":2,"documents":[{"name":"mfa","version":2,"updated_at":`+sampleTime+`,"updated_by":"user:alice"}],"action":"policy.update","target":"mfa","actor":"user:alice","at":`+sampleTime+`}`, "production", "000000000002")
	PolicyGeneration = Namespace[int64]{Space: fixed("policy-generation", "policy/generation").
				describe("a counter of changes to the stored policy documents, which every node polls", "int64 in decimal", Never,
			"never", "admin", UseCreateOnly|UseUpdate).example("7"), codec: counterCodec()}
)

// Gateway (package gateway). Bearer values are hashed.
var (
	GatewayTicket = hashed("gateway-ticket", "gw/ticket/").
			describe("hand-off tickets from Stepgate's host to an application's host, under the hash of the ticket",
			"gateway.ticket as JSON", Renewed, "one minute; a redeemed ticket is kept 12 hours more so a reload leads on", "gateway", UseCreateOnly|UseRenew).
		example(`{"sid":"5d41402abc4b2a76b9719d911017c592","uid":"u1","route":"app","bind":"aGFzaA","spent":true}`, "ticket-value")
	GatewaySession = hashed("gateway-session", "gw/session/").
			describe("gateway sessions on an application's host, under the hash of the cookie: the Stepgate session they stand for",
			"gateway.gwSession as JSON", Fixed, "the Stepgate session's end", "gateway", UseCreateOnly).
		example(`{"sid":"5d41402abc4b2a76b9719d911017c592","uid":"u1","route":"app"}`, "cookie-value")
	GatewayKeptAnonymous = Raw(hashed("gateway-kept-anonymous", "gw/kept/anon/").
				describe("requests kept while a client with no session signs in, sealed, under the hash of their id",
			"sealed gateway.kept (JSON) as bytes", Fixed, "ten minutes", "gateway", UseCreateOnly|UseQuota).
		example("\x01sealed-request", "a.request-id"))
	GatewayKeptUser = Raw(hashed("gateway-kept-user", "gw/kept/user/").
			describe("requests kept while a signed-in user steps up, sealed, under the hash of their id",
			"sealed gateway.kept (JSON) as bytes", Fixed, "ten minutes", "gateway", UseCreateOnly|UseQuota).
		example("\x01sealed-request", "request-id"))
	GatewayKeepRate = Namespace[int64]{Space: segments("gateway-keep-rate", "gw/keep-rate/", 3, 3).
			describe("requests kept per client address and window: class (anon, user), address hash, window start",
												"int64 in decimal", Fixed, "the end of the window", "gateway", UseCreateOnly|UseUpdate).
		example("3", "anon", "00112233445566778899aabbccddeeff", "1767322800"), codec: counterCodec()}
	GatewayOnce = Namespace[Mark]{Space: hashed("gateway-once", "gw/once/").
			describe("proofs and tokens spent on a single-use rule, under the hash of what was spent", `Mark, stored as "1"`, Fixed,
			"as long as the proof's tokens can be refreshed, or the token lives", "gateway", UseCreateOnly).example("1", "proof|u1|app|1767322800|/pay"), codec: markCodec([]byte("1"))}
	GatewayAsked = Namespace[time.Time]{Space: hashed("gateway-asked", "gw/asked/").
			describe("open forward-auth single-use challenges, under the hash of user, route and rule: when they were made",
			"time.Time as JSON", Fixed, "ten minutes", "gateway", UseCreateOnly).example(sampleTime, "u1|app|/pay"), codec: jsonCodec[time.Time]()}
	GatewayAnswer = Raw(hashed("gateway-answer", "gw/answer/").
			describe("upstream answers held for a browser that must step up before it sees them, sealed, under the hash of their id",
			"sealed gateway.heldAnswer (JSON) as bytes", Fixed, "the answer lifetime", "gateway", UseCreateOnly).
		example("\x01sealed-answer", "answer-id"))
)

// GatewayKept is the prefix of both classes of kept request, which one
// total quota bounds. It is no namespace of its own.
const GatewayKept = "gw/kept/"

// Web pages (package web).
var (
	RegistrationProof = segments("registration-proof", "regproof/", 1, 1).
				describe("per session, the temporary access pass or recovery code that opened a registration of security info",
			"web.regProof as JSON", Fixed, "the proof's own expiry", "web", UseCreateOnly).
		example(`{"method":"tap","ref":"pass-id","time":`+sampleTime+`,"expires_at":`+sampleTime+`}`, "5d41402abc4b2a76b9719d911017c592")
	ChangeReport = segments("change-report", "report/", 1, 1).
			describe(`"this wasn't me" links of security info changes, by nonce: the change, and when the link was used`,
			"web.report as JSON", Fixed, "the link's lifetime", "web", UseCreateOnly|UseUpdate).
		example(`{"user_id":"u1","added":true,"method":"totp","credential_id":"c1","time":`+sampleTime+`,"ip":"192.0.2.1","device":"Firefox on Linux","used_at":`+sampleTime+`}`, "NONCEABCDEFGHIJK")
)

// RegistrationOffer holds each user's answers to the registration
// campaign's offer (package web).
var RegistrationOffer = segments("registration-offer", "regoffer/", 1, 1).
	describe(`per user, how many times they answered "Not now" to the offer after sign-in to register a method, and when last`,
		"web.offerState as JSON", Never, "never; one small record per account", "web", UseCreateOnly|UseUpdate).
	example(`{"snoozed":2,"last":`+sampleTime+`}`, "u1")

// Secrets shared by every node (package app).
var Secret = Raw(segments("secret", "secrets/", 1, 1).
	describe("server secrets shared by every node (CSRF, report links, OIDC session ids), by name", "32 random bytes", Never,
		"never", "app", UseCreateOnly).example("0123456789abcdef0123456789abcdef", "csrf"))

// Authentication methods (package authn and its subpackages).
var (
	Throttle = segments("throttle", "authn/throttle/", 1, 2).
			describe("failure counts of throttled keys (login:NAME, ip:ADDR, user:ID, otp/ID, push/ID, ...)",
			"authn.throttleState as JSON", Renewed, "a week after the last failure; never while hard locked", "authn", UseCreateOnly|UseRenew).
		example(`{"failures":6,"locked_until":`+sampleTime+`,"last":`+sampleTime+`}`, "otp/u1")
	ThrottleDigest = hashed("throttle-digest", "authn/throttle-digest/").
			describe("failure counts of throttled keys that make no id of throttle (a typed name with a control character, an empty segment, or too long), under the key's SHA-256",
			"authn.throttleState as JSON", Renewed, "a week after the last failure; never while hard locked", "authn", UseCreateOnly|UseRenew).
		example(`{"failures":1,"last":`+sampleTime+`}`, "login:a//b")
	Ceremony = hashed("ceremony", "authn/ceremony/").
			describe("method ceremonies under way (sign-in, enrollment), under the hash of their id", "authn.Ceremony as JSON", Fixed,
			"the ceremony lifetime", "authn", UseCreateOnly|UseUpdate).
		example(`{"user_id":"u1","method":"webauthn","purpose":"verify","state":"eyJjaGFsbGVuZ2UiOiJ4In0=","attempts":1}`, "ceremony-id")
	LoginSpent = Namespace[Mark]{Space: hashed("login-spent", "authn/login-spent/").
			describe("passkey sign-in challenges already answered, under the hash of their state", `Mark, stored as the byte 1`, Fixed,
			"the challenge's expiry", "authn", UseCreateOnly).example("\x01", "sealed-state"), codec: markCodec([]byte{1})}
	OTPCode = hashed("otp-code", "authn/otp/code/").
		describe("one-time codes sent by mail or SMS, under the hash of their reference: the code's hash, guesses, use",
			"otp.codeRecord as JSON", Fixed, "the code lifetime", "authn/otp", UseCreateOnly|UseUpdate).
		example(`{"user_id":"u1","method":"otp-email","purpose":"verify","cred_id":"c1","hash":"aGFzaA==","expires_at":`+sampleTime+`,"guesses":1}`, "reference")
	OTPSent = Namespace[int64]{Space: segments("otp-sent", "authn/otp/sent/", 3, 3).
		describe("codes sent per window to a user or a destination: kind (user, dest), subject, window number",
												"int64 in decimal", Fixed, "two windows", "authn/otp", UseCreateOnly|UseUpdate).
		example("2", "dest", "9f86d081884c7d659a2feaa0c55ad015", "5894272"), codec: counterCodec()}
	PushApproval = segments("push-approval", "authn/push/approval/", 2, 2).
			describe("sign-in approvals sent to push devices, by user and id: the number to match and the answer",
			"push.approval as JSON", Fixed, "the approval's expiry", "authn/push", UseCreateOnly|UseUpdate|UseList).
		example(`{"id":"a1","user_id":"u1","number":42,"choices":[17,42,93],"created_at":`+sampleTime+`,"expires_at":`+sampleTime+`,"status":"pending"}`, "u1", "a1")
	PushFraud = segments("push-fraud", "authn/push/fraud/", 2, 2).
			describe("approvals a user reported as fraud, by user and time", "push.FraudReport as JSON", Fixed,
			"the fraud record lifetime", "authn/push", UseCreateOnly|UseList).
		example(`{"user_id":"u1","device_id":"d1","approval_id":"a1","requested":`+sampleTime+`,"reported":`+sampleTime+`}`, "u1", "20260102T030405.123456789Z-a1")
	AccessPass = segments("access-pass", "tap/", 1, 1).
			describe("each user's temporary access pass: its hash, whether single use, when used", "tap.Pass as JSON", Fixed,
			"the pass's expiry", "authn/tap", UseCreateOnly|UseUpdate).
		example(`{"id":"p1","user_id":"u1","hash":"aGFzaA==","once":true,"issued_by":"user:admin","created_at":`+sampleTime+`,"expires_at":`+sampleTime+`}`, "u1")
)

// Audit trail (package audit).
var (
	AuditEntry = segments("audit-entry", "audit/entry/", 1, 1).
			describe("the admin audit trail, one entry per change, chained by hash, by zero-padded sequence number",
			"audit.Entry as JSON", Never, "never", "audit", UseCreateOnly|UseList).
		example(`{"seq":1,"time":`+sampleTime+`,"actor":"cli:root","action":"user.disable","target":"alice","prev":"00","hash":"ab"}`, "00000000000000000001")
	AuditHead = fixed("audit-head", "audit/head").
			describe("the newest position of the audit chain", "audit.head as JSON", Never, "never", "audit", UseCreateOnly|UseUpdate).
			example(`{"seq":1,"hash":"ab"}`)
)

// Risk (package riskservice).
var (
	RiskRecent = segments("risk-recent", "risk/recent/", 1, 1).
			describe("each user's recent successful sign-ins, newest first", "[]risk.SignIn as JSON", Fixed,
			"the risk history's keep from its first sign-in", "riskservice", UseCreateOnly|UseUpdate).
		example(`[{"UserID":"u1","Time":`+sampleTime+`,"IP":"192.0.2.1","Country":"NL","Latitude":52.37,"Longitude":4.89,"HasCoordinates":true,"ASN":64496,"Browser":"firefox","Platform":"linux","DeviceID":"9f86d081","Success":true}]`, "u1")
	RiskFailedUser = segments("risk-failed-user", "risk/fail/user/", 1, 1).
			describe("each user's recent failed sign-ins, newest first", "[]risk.SignIn as JSON", Fixed,
			"the failure history's keep from its first failure", "riskservice", UseCreateOnly|UseUpdate).
		example(`[{"UserID":"u1","Time":`+sampleTime+`,"IP":"192.0.2.1","Country":"","Latitude":0,"Longitude":0,"HasCoordinates":false,"ASN":0,"Browser":"","Platform":"","DeviceID":"","Success":false}]`, "u1")
	RiskFailedNetwork = segments("risk-failed-network", "risk/fail/net/", 2, 2).
				describe("recent failed sign-ins per network (/24 or /48): address and prefix length",
			"[]risk.SignIn as JSON", Fixed, "the failure history's keep from its first failure", "riskservice", UseCreateOnly|UseUpdate).
		example(`[{"UserID":"unknown:bob","Time":`+sampleTime+`,"IP":"2001:db8::1","Country":"","Latitude":0,"Longitude":0,"HasCoordinates":false,"ASN":0,"Browser":"","Platform":"","DeviceID":"","Success":false}]`, "2001:db8::", "48")
	UserRisk = segments("user-risk", "risk/user/", 1, 1).
			describe("each user's risk level, its detections and how it was resolved", "risk.UserRiskState as JSON", Never,
			"never", "riskservice", UseCreateOnly|UseUpdate).
		example(`{"level":"high","since":`+sampleTime+`,"resolution":"dismissed","outside":[{"id":"3f2a9c1e0b7d4a65","type":"edr","level":"high","reason":"malware-on-device","evidence":{"host":"lt-042"},"applies_to":"sign-in","session_id":"9f86d081884c7d65","source":"client:siem","revoke":true,"received_at":`+sampleTime+`,"expires_at":`+sampleTime+`}]}`, "u1")
	RiskDetectionKey = segments("risk-detection-key", "risk/detection-key/", 2, 2).
				describe("idempotency keys of risk detections reported through the API, per source: the hash of the request and the answer given",
			"riskservice.keyRecord as JSON", Fixed, "the detection's expiry", "riskservice", UseCreateOnly|UseQuota).
		example(`{"request_sha256":"2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","answer":{"id":"3f2a9c1e0b7d4a65"}}`, "client:siem", "evt-2026-0001")
)

// Revocation (package revoke).
var RevokedBefore = Namespace[time.Time]{Space: segments("revoked-before", "revoke/not-before/", 1, 1).
	describe("per user, the time before which every session and token is revoked", "time.Time as decimal Unix microseconds",
							Renewed, "the revocation keep after the latest revocation", "revoke", UseCreateOnly|UseRenew).
	example("1767322800123456", "u1"), codec: microsCodec()}

// All is every namespace of the catalogue.
func All() []Space {
	return []Space{
		OIDCKeyring, OIDCCode, OIDCGrant, OIDCRefresh, OIDCRevokedToken.Space, OIDCAssertion.Space, OIDCClient, OIDCDeviceCode, OIDCDeviceUser, OIDCDeviceRate.Space,
		PolicyDocument, PolicyEnvironmentDocument, PolicyRelease, PolicyHistory, PolicyHistoryIndex, PolicyGeneration.Space,
		GatewayTicket, GatewaySession, GatewayKeptAnonymous.Space, GatewayKeptUser.Space, GatewayKeepRate.Space,
		GatewayOnce.Space, GatewayAsked.Space, GatewayAnswer.Space,
		RegistrationProof, ChangeReport, RegistrationOffer, Secret.Space,
		Throttle, ThrottleDigest, Ceremony, LoginSpent.Space, OTPCode, OTPSent.Space, PushApproval, PushFraud, AccessPass,
		AuditEntry, AuditHead,
		RiskRecent, RiskFailedUser, RiskFailedNetwork, UserRisk, RiskDetectionKey,
		RevokedBefore.Space,
	}
}
