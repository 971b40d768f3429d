/* replay_main.c — the main of a fuzz target outside libFuzzer: every file given, and every file of
 * every folder given (sorted by name), through LLVMFuzzerTestOneInput once. ctest runs the
 * committed corpus of each target with it (the gcc builds, ASan too); a crash or a broken
 * invariant aborts, naming the input on stderr first. */
#include "fuzz.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = 4096, n = 0, got;
    unsigned char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    const int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return 1;
    }
    fprintf(stderr, "replay %s (%zu bytes)\n", path, n);
    /* Exactly n bytes, as libFuzzer hands them: an over-read is caught by ASan. */
    unsigned char *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    int bad = 0;
    long n = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR ...  (runs each input through the fuzz target once)\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            bad |= run_file(argv[i]);
            n++;
            continue;
        }
        struct dirent **e;
        const int m = scandir(argv[i], &e, NULL, by_name);
        if (m < 0) {
            perror(argv[i]);
            bad = 1;
            continue;
        }
        for (int j = 0; j < m; j++) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", argv[i], e[j]->d_name);
            if (e[j]->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) {
                bad |= run_file(p);
                n++;
            }
            free(e[j]);
        }
        free(e);
    }
    printf("replayed %ld inputs%s\n", n, bad ? " (some could not be read)" : "");
    return bad || n == 0;
}
