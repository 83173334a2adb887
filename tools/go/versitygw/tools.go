//go:build tools

// Package tools pins the upstream program this module builds; nothing here is compiled.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
