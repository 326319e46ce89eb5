/* The audio module's part in the core (core/audio.c). */
#ifndef SPEECHFS_AUDIO_I_H
#define SPEECHFS_AUDIO_I_H

#include <stddef.h>

struct sfs_stage;

/*
 * Probe a finished stage: duration in seconds (-1 unknown) and a MIME
 * type (application/octet-stream when nothing is recognised). Never fails:
 * a probe that cannot read leaves the values unknown.
 */
void sfsi_audio_probe_stage(struct sfs_stage *st, double *duration, char *mime,
			    size_t mime_size);

#endif
