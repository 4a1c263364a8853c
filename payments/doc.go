// Package payments sells credit packages through Stripe Checkout and credits
// them exactly once. It is RenderTrust's one room for Stripe: nothing else
// imports stripe-go.
//
// A Provider starts a checkout: Stripe creates a Checkout Session and the
// user pays on Stripe's page; Dev (for serve --dev) completes at once. Either
// way the credit goes through one fulfilment path (fulfil), which checks the
// paid checkout against the package table and calls
// commands.Service.FulfilPurchase. The Webhook is how Stripe reports a paid
// session.
//
// Decisions:
//
//   - Exactly once. The account aggregate credits a purchase id once and a
//     checkout session once; a repeat with identical details writes nothing.
//     The webhook therefore needs no lock or table of its own: twenty
//     concurrent deliveries of one event race on the account stream's
//     expected version and all but the first find the purchase applied.
//   - Only payment_status "paid" credits. checkout.session.completed with
//     "unpaid" (a delayed payment method) waits for
//     checkout.session.async_payment_succeeded; async_payment_failed and
//     expired credit nothing and are logged.
//   - Deliver's results follow Stripe's retry rules, and the API's webhook
//     route (package http) answers them through its one status table:
//     Stripe retries anything but a 2xx. A bad signature is 400 (it is not from Stripe). A signed event that
//     can never be honoured (unknown package, bad user id, paid amount or
//     currency that differs from the package table, a session credited under
//     another purchase) is logged at error level for an operator to
//     reconcile and answered 200, because retrying cannot fix it. A store
//     failure or timeout is 500, so Stripe retries and the retry is safe.
//   - Events are read by the few fields used (id, type, and the session's id,
//     mode, payment status, amount, currency, client reference and metadata),
//     not decoded into stripe-go's full structs, so a webhook endpoint on a
//     Stripe API version other than stripe-go's still works.
//   - A dev purchase records the package's list price, provider "dev" and a
//     posting from external:dev, and session id "dev_{purchase id}"; nothing
//     is charged. Dev is refused whenever Stripe keys are configured.
//   - Nothing here reads the environment; cmd/ fills Config.
package payments
