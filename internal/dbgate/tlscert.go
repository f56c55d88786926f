package dbgate

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// selfSignedLifetime is how long a generated certificate is valid.
const selfSignedLifetime = 10 * 365 * 24 * time.Hour

// selfSignedNotBefore is when a generated certificate starts to be
// valid: a fixed point in the past rather than the generating machine's
// clock, because clients pin the certificate itself as their root, so
// its start protects nothing, while a client whose clock runs behind the
// server's would refuse a certificate that starts "now".
var selfSignedNotBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// LoadOrCreateCert returns the certificate kept in dir for the database
// name, generating a self-signed one (ECDSA P-256, for localhost and the
// loopback addresses plus hosts) on first use. Its files are
// dbgate-NAME.crt and dbgate-NAME.key (mode 0600); clients that verify
// the server (sslmode=verify-full) are given the .crt as sslrootcert.
func LoadOrCreateCert(dir, name string, hosts []string) (tls.Certificate, string, error) {
	certFile := filepath.Join(dir, "dbgate-"+name+".crt")
	keyFile := filepath.Join(dir, "dbgate-"+name+".key")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err == nil {
		return cert, certFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, "", fmt.Errorf("database %s: load certificate %s: %w", name, certFile, err)
	}
	certPEM, keyPEM, err := selfSigned(name, hosts)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("database %s: generate certificate: %w", name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("database %s: %w", name, err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("database %s: write %s: %w", name, keyFile, err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("database %s: write %s: %w", name, certFile, err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	return cert, certFile, err
}

func selfSigned(name string, hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Stepgate database gateway " + name},
		NotBefore:    selfSignedNotBefore,
		NotAfter:     now.Add(selfSignedLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
