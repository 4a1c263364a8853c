package creator

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rendertrust/rendertrust/client"
)

// Limits of the credits commands.
const (
	// historyDefault is how many transactions `credits history` shows.
	historyDefault = 20
	// usageBarWidthMax is the width of the usage chart's longest bar, in
	// terminal columns.
	usageBarWidthMax = 40
	// usageDaysDefault is the guide's 7-day chart.
	usageDaysDefault = 7
)

// newCreditsCommand returns `rendertrust credits`: balance, history, usage
// and buy.
func newCreditsCommand() *cobra.Command {
	f := &cliFlags{}
	cmd := &cobra.Command{Use: "credits", Short: "Your balance, transactions and usage; buy credits"}
	bindCLIFlags(cmd.PersistentFlags(), f)
	cmd.AddCommand(newCreditsBalanceCommand(f), newCreditsHistoryCommand(f), newCreditsUsageCommand(f), newCreditsBuyCommand(f))
	return cmd
}

func newCreditsBalanceCommand(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "balance",
		Short: "Show your balance, held and available credits",
		Args:  cobra.NoArgs,
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			b, err := c.Balance(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				return cliPrintJSON(cmd.OutOrStdout(), b)
			}
			t := cliTable(cmd.OutOrStdout())
			fmt.Fprintln(t, "BALANCE\tHELD\tAVAILABLE")
			fmt.Fprintf(t, "%d\t%d\t%d\n", b.Balance, b.Held, b.Available)
			return t.Flush()
		}),
	}
}

func newCreditsHistoryCommand(f *cliFlags) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "history [--limit N]",
		Short: "List your credit transactions, newest first",
		Args:  cobra.NoArgs,
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			txs := []client.Transaction{}
			for tx, err := range c.AllTransactions(cmd.Context()) {
				if err != nil {
					return err
				}
				if txs = append(txs, tx); limit > 0 && len(txs) == limit {
					break
				}
			}
			return printTransactions(cmd.OutOrStdout(), f.json, txs)
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", historyDefault, "show at most this many (0: all)")
	return cmd
}

// printTransactions prints transactions with signed amounts: what came in
// (+) and what went out of the balance (−); holds and releases move only
// the available credits and show in parentheses.
func printTransactions(w io.Writer, asJSON bool, txs []client.Transaction) error {
	if asJSON {
		return cliPrintJSON(w, txs)
	}
	t := cliTable(w)
	fmt.Fprintln(t, "TIME\tTYPE\tAMOUNT\tJOB\tENTRY\tANCHORED")
	for _, tx := range txs {
		typ := tx.Type
		if tx.Dev {
			typ += " (dev)"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", tx.Time.Local().Format(time.DateTime), typ, signedAmount(tx), cliDash(tx.JobID), tx.EntryID, cliYesNo(tx.Anchored))
	}
	return t.Flush()
}

func signedAmount(tx client.Transaction) string {
	switch tx.Type {
	case "purchase", "grant", "refund":
		return fmt.Sprintf("+%d", tx.Amount)
	case "deduction":
		return fmt.Sprintf("-%d", tx.Amount)
	}
	return fmt.Sprintf("(%d)", tx.Amount)
}

func cliYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newCreditsUsageCommand(f *cliFlags) *cobra.Command {
	var q client.UsageQuery
	cmd := &cobra.Command{
		Use:   "usage [--days N] [--tz ZONE]",
		Short: "Chart the credits you used per day (the last 7 days by default)",
		Args:  cobra.NoArgs,
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, _ []string) error {
			u, err := c.Usage(cmd.Context(), q)
			if err != nil {
				return err
			}
			if f.json {
				return cliPrintJSON(cmd.OutOrStdout(), u)
			}
			return printUsageChart(cmd.OutOrStdout(), u)
		}),
	}
	cmd.Flags().IntVar(&q.Days, "days", usageDaysDefault, "how many days, ending today (1..90)")
	cmd.Flags().StringVar(&q.TimeZone, "tz", os.Getenv("TZ"), "IANA time zone whose days to count (default: $TZ, else UTC)")
	return cmd
}

// printUsageChart draws one bar per day, scaled to the busiest day.
func printUsageChart(w io.Writer, u client.Usage) error {
	var most int64
	for _, d := range u.Days {
		most = max(most, d.Credits)
	}
	fmt.Fprintf(w, "Credits used per day (%s)\n", u.TimeZone)
	for _, d := range u.Days {
		fmt.Fprintf(w, "%s %s │%-*s %d\n", d.Date, cliWeekday(d.Date), usageBarWidthMax, usageBar(d.Credits, most), d.Credits)
	}
	_, err := fmt.Fprintf(w, "Total: %d\n", u.Total)
	return err
}

// usageBar returns a bar of n out of most, in eighths of a column; any
// usage at all shows at least a sliver.
func usageBar(n, most int64) string {
	if n <= 0 || most <= 0 {
		return ""
	}
	eighths := max(n*usageBarWidthMax*8/most, 1)
	bar := strings.Repeat("█", int(eighths/8))
	if r := eighths % 8; r > 0 {
		bar += string([]rune("▏▎▍▌▋▊▉")[r-1])
	}
	return bar
}

// cliWeekday returns the short weekday of a YYYY-MM-DD date, or "   ".
func cliWeekday(date string) string {
	t, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return "   "
	}
	return t.Weekday().String()[:3]
}

func newCreditsBuyCommand(f *cliFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "buy [PACKAGE_ID]",
		Short: "Buy a credit package (without one: list the packages)",
		Args:  cobra.MaximumNArgs(1),
		RunE: cliCommand(f, func(cmd *cobra.Command, c *client.Client, args []string) error {
			if len(args) == 0 {
				return listPackages(cmd, c, f.json)
			}
			co, err := c.Checkout(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if f.json {
				return cliPrintJSON(cmd.OutOrStdout(), co)
			}
			if co.Dev {
				fmt.Fprintf(cmd.OutOrStdout(), "Credited at once by the development payment provider (nothing was charged). Purchase %s.\n", co.PurchaseID)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Open this page to pay; the credits arrive once the payment is confirmed:\n%s\n", co.CheckoutURL)
			return nil
		}),
	}
}

func listPackages(cmd *cobra.Command, c *client.Client, asJSON bool) error {
	ps, err := c.Packages(cmd.Context())
	if err != nil {
		return err
	}
	if asJSON {
		return cliPrintJSON(cmd.OutOrStdout(), ps)
	}
	t := cliTable(cmd.OutOrStdout())
	fmt.Fprintln(t, "PACKAGE\tNAME\tCREDITS\tPRICE\tPER CREDIT")
	for _, p := range ps {
		fmt.Fprintf(t, "%s\t%s\t%d\t%s\t%s\n", p.ID, p.Name, p.Credits, cliMoney(p.PriceCents, p.Currency), cliPricePerCredit(p.PriceCents, p.Credits))
	}
	return t.Flush()
}

// cliMoney formats cents as "$10.00" (or "10.00 EUR").
func cliMoney(cents int64, currency string) string {
	s := fmt.Sprintf("%d.%02d", cents/100, cents%100)
	if strings.EqualFold(currency, "usd") || currency == "" {
		return "$" + s
	}
	return s + " " + strings.ToUpper(currency)
}

// cliPricePerCredit formats the price per credit to a tenth of a cent, as the guide's
// "$0.100/credit", in integers.
func cliPricePerCredit(cents, credits int64) string {
	if credits <= 0 {
		return "-"
	}
	mills := (cents*10 + credits/2) / credits // tenths of a cent
	return fmt.Sprintf("$%d.%03d", mills/1000, mills%1000)
}
