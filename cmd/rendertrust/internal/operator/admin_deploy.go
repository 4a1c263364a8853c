package operator

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/anchor/ethchain"
)

// deployPoll is how often deploy-anchor polls for the deployment's receipt.
const deployPoll = 2 * time.Second

// newDeployAnchorCommand returns `rendertrust admin deploy-anchor --rpc URL
// --key FILE [--writer ADDRESS]`: it deploys the Anchor contract from the
// key's account (its owner, who may later change the writer) and prints the
// contract's address, for the server's contract address setting.
func newDeployAnchorCommand() *cobra.Command {
	var rpcURL, keyPath, writer string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "deploy-anchor --rpc URL --key FILE [--writer ADDRESS]",
		Short: "Deploy the Anchor contract and print its address",
		Long: `Deploy the Anchor contract (contracts/Anchor.sol) to the chain at --rpc, from
the account of the key in --key (64 hex digits, mode 0600), which becomes the
contract's owner. The writer, the only account allowed to anchor, is --writer,
or the same account. Waits for the deployment to be mined and prints the
contract's address on standard output.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true, // a failed check or deployment is not a usage error
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return runDeployAnchor(ctx, cmd, rpcURL, keyPath, writer)
		},
	}
	cmd.Flags().StringVar(&rpcURL, "rpc", "", "JSON-RPC endpoint of the chain")
	cmd.Flags().StringVar(&keyPath, "key", "", "file holding the deploying account's private key (hex)")
	cmd.Flags().StringVar(&writer, "writer", "", "address allowed to anchor (default: the key's account)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the deployment to be mined")
	cmd.MarkFlagRequired("rpc")
	cmd.MarkFlagRequired("key")
	return cmd
}

func runDeployAnchor(ctx context.Context, cmd *cobra.Command, rpcURL, keyPath, writer string) error {
	key, err := ethchain.LoadKey(keyPath)
	if err != nil {
		return err
	}
	writerAddr := crypto.PubkeyToAddress(key.PublicKey)
	if writer != "" {
		if !common.IsHexAddress(writer) {
			return fmt.Errorf("--writer %q is not an address", writer)
		}
		writerAddr = common.HexToAddress(writer)
	}
	client, err := ethchain.Dial(ctx, rpcURL)
	if err != nil {
		return err
	}
	defer client.Close()
	addr, tx, err := ethchain.Deploy(ctx, client, key, writerAddr)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "deploying Anchor on chain %d from %s, writer %s: transaction %s\n",
		client.ChainID(), crypto.PubkeyToAddress(key.PublicKey), writerAddr, tx)
	receipt, err := client.WaitMined(ctx, tx, deployPoll)
	if err != nil {
		return err
	}
	if !receipt.Succeeded() {
		return fmt.Errorf("deployment transaction %s failed (block %d)", tx, receipt.BlockNumber)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "mined in block %d, %d gas\n", receipt.BlockNumber, receipt.GasUsed)
	fmt.Fprintln(cmd.OutOrStdout(), addr.Hex())
	return nil
}
