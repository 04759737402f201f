package pluginhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// parseChecksums checks Options.Checksums: each value is the SHA-256 of
// the plugin file named by its key, as 64 hex digits.
func parseChecksums(sums map[string]string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(sums))
	for name, s := range sums {
		if name == "" || strings.ContainsRune(name, filepath.Separator) {
			return nil, fmt.Errorf("pluginhost: plugins.sha256: %q is not a plugin file name (a name in plugins_dir, without a directory)", name)
		}
		b, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:"))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("pluginhost: plugins.sha256.%s is %q: it must be the file's SHA-256 as 64 hex digits (sha256sum prints it)", name, s)
		}
		out[name] = b
	}
	return out, nil
}

// checkFile refuses a plugin file that anyone may change: the host runs
// it with its own rights and secrets.
func checkFile(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := info.Mode().Perm(); perm&0o002 != 0 {
		return fmt.Errorf("%s is writable by every user (mode %04o), so anyone could change what the host runs: chmod o-w %s", path, perm, path)
	}
	return nil
}

// openPinned opens the plugin file and checks its SHA-256 against want.
// The host then runs the very file it checked (through the open
// descriptor), so a file swapped after the check is not what runs.
func openPinned(path string, want []byte) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		f.Close()
		return nil, fmt.Errorf("%s has SHA-256 %x, not the %x that plugins.sha256 pins: it was changed, or the pin is out of date", path, got, want)
	}
	return f, nil
}
