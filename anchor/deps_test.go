package anchor_test

import (
	"os/exec"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "github.com/rendertrust/rendertrust"

// goEthereum is the module that only the chain adapters may depend on.
const goEthereum = "github.com/ethereum/go-ethereum"

// ethereumRooms are the packages allowed to depend on go-ethereum: the
// chain adapter and its test helpers, the embedded dev chain, the
// contract's bindings, the wiring in cmd (main, the server's Main, and the
// operator's commands, which deploy the contract and read the chain), and
// the audit tools' test installation, which wires a dev chain as `serve`
// does. The creator's commands are not among them.
var ethereumRooms = []string{
	module + "/anchor/ethchain",
	module + "/anchor/devchain",
	module + "/anchor/anchorcontract",
	module + "/cmd/rendertrust",
	module + "/cmd/rendertrust/internal/server",
	module + "/cmd/rendertrust/internal/operator",
	module + "/audit/audittest",
}

// TestGoEthereumStaysInItsAdapter: go-ethereum's types stay behind
// anchor/ethchain. No package outside ethereumRooms may depend on it,
// directly or through another package (go list's Deps is transitive).
func TestGoEthereumStaysInItsAdapter(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), " ")
		checked++
		if inEthereumRoom(pkg) {
			continue
		}
		for dep := range strings.FieldsSeq(deps) {
			if strings.HasPrefix(dep, goEthereum+"/") || dep == goEthereum {
				t.Errorf("%s depends on %s: go-ethereum belongs in anchor/ethchain (or devchain, anchorcontract, the wiring in cmd)", pkg, dep)
				break
			}
		}
	}
	if checked < 20 {
		t.Fatalf("go list listed %d packages, want the whole module", checked)
	}
}

// inEthereumRoom reports whether pkg is a room or inside one, but never a
// package of cmd/rendertrust/internal the list does not name.
func inEthereumRoom(pkg string) bool {
	for _, room := range ethereumRooms {
		if pkg == room {
			return true
		}
		if strings.HasPrefix(pkg, room+"/") && !strings.HasPrefix(pkg, module+"/cmd/rendertrust/internal/") {
			return true
		}
	}
	return false
}
