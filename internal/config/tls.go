package config

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ratemon/ratemon/internal/fielderr"
)

// MaxSecretFileSize bounds the certificate, key, nkey and credentials files
// read for redis.tls, nats.tls, nats.nkey_file and nats.creds_file.
const MaxSecretFileSize = 1 << 20

// TLSConfig is the client side of TLS to Redis (redis.tls) or NATS
// (nats.tls). Any setting given turns TLS on. A relative path written in
// the config file is relative to the file's directory, as include globs
// are; one given by a flag or a variable, to the working directory.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file" usage:"pem file of the certificate authorities that sign the server certificate; empty: the system's"`
	CertFile           string `yaml:"cert_file" usage:"pem file of the client certificate, for servers that verify their clients; needs key_file"`
	KeyFile            string `yaml:"key_file" usage:"pem file of the private key of cert_file"`
	ServerName         string `yaml:"server_name" usage:"name the server certificate must hold; empty: the host of the url"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify" usage:"accept any server certificate; for tests only, as it gives up the protection against a man in the middle"`
}

// Enabled reports whether any TLS setting is given.
func (t *TLSConfig) Enabled() bool { return *t != TLSConfig{} }

// Client reads the files and builds the client's tls.Config. serverName is
// the name to verify when ServerName is empty (the host of the URL; empty
// leaves it to the client library). The error is a *fielderr.Error list
// with paths relative to the tls section that name the files.
func (t *TLSConfig) Client(serverName string) (*tls.Config, error) {
	var l fielderr.List
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cmp.Or(t.ServerName, serverName),
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pem, err := readSecretFile(t.CAFile)
		switch {
		case err != nil:
			l.Add("ca_file", "%v", err)
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				l.Add("ca_file", "no pem certificate in %q", t.CAFile)
			}
			c.RootCAs = pool
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		l.Add("key_file", "required with cert_file")
	case t.CertFile == "" && t.KeyFile != "":
		l.Add("cert_file", "required with key_file")
	case t.CertFile != "":
		certPEM, certErr := readSecretFile(t.CertFile)
		if certErr != nil {
			l.Add("cert_file", "%v", certErr)
		}
		keyPEM, keyErr := readSecretFile(t.KeyFile)
		if keyErr != nil {
			l.Add("key_file", "%v", keyErr)
		}
		if certErr == nil && keyErr == nil {
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				l.Add("cert_file", "%q with key_file %q: %v", t.CertFile, t.KeyFile, err)
			}
			c.Certificates = []tls.Certificate{cert}
		}
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// resolve makes the relative paths absolute against dir.
func (t *TLSConfig) resolve(dir string) {
	for _, p := range []*string{&t.CAFile, &t.CertFile, &t.KeyFile} {
		resolvePath(p, dir)
	}
}

// resolvePath joins a relative path to dir and makes it absolute, so that
// it stays right for a child process with another working directory; an
// empty or absolute path is left as it is.
func resolvePath(p *string, dir string) {
	if *p == "" || filepath.IsAbs(*p) {
		return
	}
	*p = filepath.Join(dir, *p)
	if abs, err := filepath.Abs(*p); err == nil {
		*p = abs
	}
}

// resolveFiles makes the relative paths of files the config file names
// relative to the directory of that file, dir.
func (c *Config) resolveFiles(dir string) {
	c.Redis.TLS.resolve(dir)
	c.NATS.TLS.resolve(dir)
	resolvePath(&c.NATS.NkeyFile, dir)
	resolvePath(&c.NATS.CredsFile, dir)
}

// readSecretFile reads a regular file of at most MaxSecretFileSize bytes.
// It refuses devices, pipes and directories without opening them, so that
// a bad path cannot make it block or read forever. Its messages name the
// file, never its content.
func readSecretFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %s", name, ioReason(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %q: not a regular file", name)
	}
	if st.Size() > MaxSecretFileSize {
		return nil, fmt.Errorf("cannot read %q: larger than %d bytes", name, MaxSecretFileSize)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %s", name, ioReason(err))
	}
	return data, nil
}
