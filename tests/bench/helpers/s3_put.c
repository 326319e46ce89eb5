/*
 * For bench_s3.py: store a file in the gateway named by the SFS_S3_*
 * environment through the core's S3 client, with a given part size and
 * parts in parallel, and print the seconds it took. Built by the
 * Makefile beside the benchmarks (the client is internal to core).
 *
 *   s3_put FILE KEY PART_MIB PARALLEL
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "s3_i.h"

int main(int argc, char **argv)
{
	struct sfsi_s3_opts o;
	struct sfsi_s3 *c = NULL;
	struct sfs_err e;
	struct timespec a, b;
	struct stat st;
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: s3_put FILE KEY PART_MIB PARALLEL\n");
		return 2;
	}
	sfsi_s3_opts_init(&o);
	o.endpoint = getenv("SFS_S3_ENDPOINT");
	o.region = getenv("SFS_S3_REGION");
	o.access_key = getenv("SFS_S3_ACCESS_KEY");
	o.secret_key = getenv("SFS_S3_SECRET_KEY");
	o.bucket = getenv("SFS_S3_BUCKET");
	o.part_size = (int64_t)atoi(argv[3]) << 20;
	o.parallel = atoi(argv[4]);
	sfs_err_init(&e);
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) || !o.endpoint || !o.bucket ||
	    sfsi_s3_new(&o, &c, &e)) {
		fprintf(stderr, "s3_put: cannot start: %s\n", e.message);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (sfsi_s3_put_fd(c, argv[2], fd, 0, st.st_size, NULL, &e)) {
		fprintf(stderr, "s3_put: %s\n", e.message);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.3f\n", (double)(b.tv_sec - a.tv_sec) +
				 (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	sfsi_s3_free(c);
	close(fd);
	return 0;
}
