// Package anchorcontract is the Go binding (abigen v2) of the Anchor
// contract in contracts/Anchor.sol, which records the audit log's Merkle
// roots by tree size.
//
// anchor.go is generated from the committed contracts/Anchor.abi and
// contracts/Anchor.bin, so building needs neither npm nor solc. To rebuild
// all three after editing the contract (needs node/npm and the Go module
// proxy):
//
//	go generate ./anchor/...
//
// The first step compiles with the solc-js version pinned in
// contracts/package.json (evmVersion and optimizer settings are in
// contracts/compile.js); the second runs abigen of the go-ethereum version
// in go.mod.
package anchorcontract

//go:generate sh -c "cd ../../contracts && npm ci --no-audit --no-fund && node compile.js"
//go:generate go run github.com/ethereum/go-ethereum/cmd/abigen@v1.17.10 --v2 --abi ../../contracts/Anchor.abi --bin ../../contracts/Anchor.bin --pkg anchorcontract --type Anchor --out anchor.go
