#include <sqlite3.h>

// Varargs C functions are not callable from Swift: wrap the ones Store needs.
static inline int pingem_sqlite3_db_config_defensive(sqlite3 *db, int on) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, (int *)0);
}
