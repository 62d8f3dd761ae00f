/* tools/moka.c -- placeholder replaced by the CLI below. */
int main(void) { return 2; }
