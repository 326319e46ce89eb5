/* The media jobs' bodies and the probe of new content (core/media.c). */
#ifndef SPEECHFS_MEDIA_I_H
#define SPEECHFS_MEDIA_I_H

#include <stddef.h>
#include "speechfs/err.h"

struct sfs_store;
struct sfs_stage;

/*
 * Install the listening-audio and URI-import job handlers on a store where
 * none is set (sfs_workers_start does this; tests may install their own).
 */
void sfsi_media_install(struct sfs_store *s);

/*
 * Probe a finished stage: duration in seconds (-1 unknown) and a MIME
 * type (application/octet-stream when nothing is recognised). Never fails:
 * a probe that cannot read leaves the values unknown.
 */
void sfsi_media_probe(struct sfs_stage *st, double *duration, char *mime,
		      size_t mime_size);

#endif
