package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// StartNATSWith is StartNATS with edit applied to the server's options
// first: users, a token, nkey users, TLS, operator mode.
func StartNATSWith(t testing.TB, edit func(*server.Options)) *NATS {
	t.Helper()
	n := &NATS{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	edit(&n.opts)
	n.start()
	t.Cleanup(n.Shutdown)
	return n
}

// NATSTLS makes a server speak TLS with the PKI's server certificate and
// require a client certificate signed by its CA.
func NATSTLS(t testing.TB, p *PKI) func(*server.Options) {
	t.Helper()
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: p.ServerCertFile, KeyFile: p.ServerKeyFile, CaFile: p.CAFile, Verify: true,
	})
	if err != nil {
		t.Fatalf("testenv: nats tls config: %v", err)
	}
	return func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tc, 2
	}
}

// NKeyUser creates an nkey user: it returns its public key, for
// server.NkeyUser, and the path of a file holding its seed.
func NKeyUser(t testing.TB) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("testenv: nkey user: %v", err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatalf("testenv: nkey user: %v", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatalf("testenv: nkey user: %v", err)
	}
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, append(seed, '\n'), 0o600); err != nil {
		t.Fatalf("testenv: write nkey seed: %v", err)
	}
	return pub, seedFile
}

// NATSOperator is an operator (JWT) mode setup: an operator, one account
// it signed (JetStream allowed) and the creds file of a user of that
// account.
type NATSOperator struct {
	CredsFile string // user JWT and seed, as `nsc generate creds` writes them
	operator  *jwt.OperatorClaims
	resolver  *server.MemAccResolver
	system    string // public key of the system account
	account   nkeys.KeyPair
}

// NewNATSOperator creates the operator, the account and the user.
func NewNATSOperator(t testing.TB) *NATSOperator {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("testenv: nats operator: %v", err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, err := okp.PublicKey()
	must(err)
	// JetStream needs a system account.
	skp, err := nkeys.CreateAccount()
	must(err)
	spub, err := skp.PublicKey()
	must(err)
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "ratemon-test"
	oc.SystemAccount = spub
	ojwt, err := oc.Encode(okp)
	must(err)
	op := &NATSOperator{resolver: &server.MemAccResolver{}, system: spub}
	op.operator, err = jwt.DecodeOperatorClaims(ojwt)
	must(err)
	sc := jwt.NewAccountClaims(spub)
	sc.Name = "SYS"
	sjwt, err := sc.Encode(okp)
	must(err)
	must(op.resolver.Store(spub, sjwt))

	op.account, err = nkeys.CreateAccount()
	must(err)
	apub, err := op.account.PublicKey()
	must(err)
	ac := jwt.NewAccountClaims(apub)
	ac.Name = "ratemon"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	ajwt, err := ac.Encode(okp)
	must(err)
	must(op.resolver.Store(apub, ajwt))
	op.CredsFile = Creds(t, op.account)
	return op
}

// Configure puts a server in operator mode with op's operator and account.
func (op *NATSOperator) Configure(o *server.Options) {
	o.TrustedOperators = []*jwt.OperatorClaims{op.operator}
	o.AccountResolver = op.resolver
	o.SystemAccount = op.system
}

// Creds creates a user signed by account and writes its creds file. With
// an account the server does not trust, the user is refused.
func Creds(t testing.TB, account nkeys.KeyPair) string {
	t.Helper()
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("testenv: creds: %v", err)
	}
	upub, err := ukp.PublicKey()
	if err != nil {
		t.Fatalf("testenv: creds: %v", err)
	}
	ujwt, err := jwt.NewUserClaims(upub).Encode(account)
	if err != nil {
		t.Fatalf("testenv: creds: %v", err)
	}
	seed, err := ukp.Seed()
	if err != nil {
		t.Fatalf("testenv: creds: %v", err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatalf("testenv: creds: %v", err)
	}
	path := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(path, creds, 0o600); err != nil {
		t.Fatalf("testenv: write creds: %v", err)
	}
	return path
}
