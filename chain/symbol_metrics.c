/*
 * symbol_metrics - the family smtpgate_symbols_total{symbol="NAME"}: how
 * many transactions ended carrying each symbol (chain.h).
 *
 * Promises: a transaction counts once per symbol it carries when it ends,
 * a connection's symbols (a DNSBL listing) with every transaction of that
 * connection, whatever the transaction's result, so the family reads next
 * to smtpgate_transactions_total.  Names are chosen by plugins, not by the
 * admin, so the family is bounded: the first SYMBOL_METRICS_NAMES distinct
 * names get a series each for the process's life; every later name counts
 * in symbol="(other)", which no symbol name can be (symbols are letters,
 * digits and '_').
 *
 * Assumes: called on the connection's thread with the transaction's
 * symbols still in place (before chain_tx_clear), once per transaction.
 */
#include <pthread.h>

#include "chain/chain.h"
#include "util/metrics.h"

#define SYMBOL_METRICS_NAMES 500
#define SYMBOL_METRICS_OTHER "(other)"

static struct metrics_family *symbols_family;
static struct metrics_series *symbols_other;
static pthread_once_t symbols_once = PTHREAD_ONCE_INIT;

static void symbol_metrics_init(void)
{
    static const char *const labels[] = {"symbol", NULL};
    symbols_family = metrics_family("smtpgate_symbols_total", METRICS_COUNTER,
                                    "Transactions ended carrying the symbol (at most 500 names; "
                                    "later names count as symbol=\"(other)\")",
                                    labels, NULL, 0);
    symbols_other = metrics_series(symbols_family, (const char *const[]){SYMBOL_METRICS_OTHER});
}

void chain_symbol_metrics_register(void)
{
    pthread_once(&symbols_once, symbol_metrics_init);
}

void chain_symbol_metrics_count(const struct chain_conn *c)
{
    if (!c || chain_symbol_count(c) == 0)
        return;
    pthread_once(&symbols_once, symbol_metrics_init);
    /* A name is in one scope only (add_symbol moves it), so each is seen once. */
    for (size_t i = 0; i < chain_symbol_count(c); i++) {
        const struct sg_symbol *sym = chain_symbol_get(c, i);
        metrics_add(metrics_series_capped(symbols_family, (const char *const[]){sym->name},
                                          SYMBOL_METRICS_NAMES + 1, symbols_other),
                    1);
    }
}
