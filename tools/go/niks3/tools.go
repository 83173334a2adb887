//go:build tools

// Package tools pins the upstream programs this module builds; nothing here is compiled.
package tools

import (
	_ "github.com/Mic92/niks3/cmd/niks3"
	_ "github.com/Mic92/niks3/cmd/niks3-server"
)
