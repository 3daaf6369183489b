package config

import (
	"net/url"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// Options returns the nats.go options of the authentication and TLS
// settings (the URL, names and reconnection are the caller's). It checks
// that at most one way to authenticate is given and reads the files it
// names. The error is a *fielderr.Error list with paths relative to the
// nats section; it names files, never their content or a secret.
func (c *NATSConfig) Options() ([]nats.Option, error) {
	var l fielderr.List
	var opts []nats.Option
	single := c.checkAuth(&l)
	// The files are checked even when they conflict, so that every
	// problem is reported at once.
	var nkey nats.Option
	if c.NkeyFile != "" {
		nkey = nkeyOption(&l, c.NkeyFile)
	}
	creds := c.CredsFile != "" && checkCreds(&l, c.CredsFile)
	if single {
		switch {
		case c.User != "":
			opts = append(opts, nats.UserInfo(c.User, c.Password.Reveal()))
		case c.Token != "":
			opts = append(opts, nats.Token(c.Token.Reveal()))
		case nkey != nil:
			opts = append(opts, nkey)
		case creds:
			opts = append(opts, nats.UserCredentials(c.CredsFile))
		}
	}
	if c.TLS.Enabled() {
		// The server name defaults to the host of the URL nats.go dials.
		if tc, err := c.TLS.Client(""); err != nil {
			l.Merge("tls", err)
		} else {
			opts = append(opts, nats.Secure(tc))
		}
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return opts, nil
}

// checkAuth reports conflicting ways to authenticate and a user without a
// password (or the reverse); it returns true when there is none.
func (c *NATSConfig) checkAuth(l *fielderr.List) bool {
	before := l.Len()
	switch {
	case c.User != "" && c.Password == "":
		l.Add("user", "needs nats.password")
	case c.User == "" && c.Password != "":
		l.Add("password", "needs nats.user")
	}
	ways := []struct {
		path, name string
		set        bool
	}{
		{"url", "the credentials in nats.url", urlsHaveCredentials(c.URL)},
		{"user", "nats.user", c.User != "" || c.Password != ""},
		{"token", "nats.token", c.Token != ""},
		{"nkey_file", "nats.nkey_file", c.NkeyFile != ""},
		{"creds_file", "nats.creds_file", c.CredsFile != ""},
	}
	first := -1
	for i, w := range ways {
		switch {
		case !w.set:
		case first < 0:
			first = i
		default:
			l.Add(w.path, "conflicts with %s: use one way to authenticate (user and password, token, nkey_file or creds_file)", ways[first].name)
		}
	}
	return l.Len() == before
}

// nkeyOption reads the seed of an nkey user from file; nil when it cannot.
func nkeyOption(l *fielderr.List, file string) nats.Option {
	data, err := readSecretFile(file)
	if err != nil {
		l.Add("nkey_file", "%v", err)
		return nil
	}
	defer wipe(data)
	kp, err := nkeys.ParseDecoratedUserNKey(data)
	if err != nil {
		l.Add("nkey_file", "no nkey user seed (SU...) in %q", file)
		return nil
	}
	kp.Wipe()
	// nats.go reads the file again for each signature and wipes it after.
	o, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		l.Add("nkey_file", "no nkey user seed (SU...) in %q", file)
		return nil
	}
	return o
}

// checkCreds checks that file holds a user JWT and its nkey seed, as
// `nsc generate creds` writes them; nats.go reads it again at each connect.
func checkCreds(l *fielderr.List, file string) bool {
	data, err := readSecretFile(file)
	if err != nil {
		l.Add("creds_file", "%v", err)
		return false
	}
	defer wipe(data)
	token, err := nkeys.ParseDecoratedJWT(data)
	if err == nil {
		_, err = jwt.DecodeUserClaims(token)
	}
	if err != nil {
		l.Add("creds_file", "no user jwt in %q", file)
		return false
	}
	kp, err := nkeys.ParseDecoratedUserNKey(data)
	if err != nil {
		l.Add("creds_file", "no nkey user seed (SU...) in %q", file)
		return false
	}
	kp.Wipe()
	return true
}

// urlsHaveCredentials reports whether a URL of the comma-separated list
// carries a user, password or token.
func urlsHaveCredentials(list string) bool {
	for s := range strings.SplitSeq(list, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// wipe overwrites a buffer that held a key.
func wipe(b []byte) {
	for i := range b {
		b[i] = 'x'
	}
}
