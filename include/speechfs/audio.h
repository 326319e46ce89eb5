/*
 * Audio of the store: probing an uploaded recording (duration, MIME type)
 * and encoding it into the MP3 "listening audio" served to players. Input
 * is read through libsndfile (WAV, FLAC, Ogg, AIFF, CAF, MP3, ...), output
 * goes through LAME into a stage, in constant memory whatever the length.
 */
#ifndef SPEECHFS_AUDIO_H
#define SPEECHFS_AUDIO_H

#include <stddef.h>
#include <stdint.h>
#include "err.h"

struct sfs_stage;

/*
 * Settings of the listening MP3 (the store config's la_* values).
 * bitrate_kbps: 8..320, CBR, or the average bitrate (LAME ABR) when vbr is
 * non-zero; sample_rate: 8000..48000, LAME resamples and may pick the
 * nearest rate MP3 allows; channels: 1 or 2, an upper bound (a mono
 * source stays mono; more channels than asked are mixed down).
 */
struct sfs_audio_opts {
	int bitrate_kbps;
	int sample_rate;
	int channels;
	int vbr;
};

/* The defaults: 48 kbps CBR, 22050 Hz, mono. */
void sfs_audio_opts_init(struct sfs_audio_opts *o);

/*
 * Find the duration in seconds and the MIME type of the content of `fd`
 * (read with pread from offset 0; the file offset is not used). When
 * libsndfile cannot read it, the MIME type comes from magic numbers and
 * *duration is -1 (unknown). `duration` and `mime` may be NULL.
 * Returns SFS_OK with whatever is known; SFS_IO only when reading fails.
 */
enum sfs_status sfs_audio_probe(int fd, double *duration, char *mime,
				size_t mime_size,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The waveform overview of a recording: the loudest sample (0..255, linear
 * in amplitude) of each slice of time, for a player to draw and click
 * into. Slices start at SFS_PEAKS_SLICE_MS; when a recording needs more
 * than SFS_PEAKS_MAX of them, neighbours merge in pairs and the slice
 * doubles, so a recording of any length ends with at most SFS_PEAKS_MAX
 * peaks (at least half that many once merging began) in fixed memory.
 */
#define SFS_PEAKS_MAX 2000
#define SFS_PEAKS_SLICE_MS 10

struct sfs_peaks {
	int sample_rate;	 /* of the decoded source */
	int64_t frames;		 /* frames decoded, in all */
	int64_t frames_per_peak; /* one slice, in frames */
	size_t n;		 /* peaks in v */
	unsigned char v[SFS_PEAKS_MAX];
	/* the slice being filled */
	float cur;
	int64_t in_cur;
};

/* Start an empty overview of audio at sample_rate (> 0). */
void sfs_peaks_init(struct sfs_peaks *p, int sample_rate);
/* Account n frames of one or two channel planes (r may be NULL). */
void sfs_peaks_add(struct sfs_peaks *p, const float *l, const float *r, int n);
/* Close the last slice (a partial one counts). */
void sfs_peaks_finish(struct sfs_peaks *p);

/*
 * Encode the audio of `in_fd` (read with pread from offset 0) as MP3 and
 * append it to `out`, which should be empty: an ID3v2.4 tag with TLEN
 * (duration in ms), then the MP3 frames, the first of which is a Xing/Info
 * frame (frame count, encoder delay and padding) so players show the
 * duration and seek. The stage is written at random positions at the end
 * (see sfs_stage_pwrite); finishing it is the caller's business.
 * `o` NULL means the defaults. `progress(arg)` (may be NULL) is called
 * once at the start, then about once a second; a non-zero return stops
 * with SFS_CONFLICT ("cancelled"). A file cut short (a header promising
 * more than there is) gives the audio that is there.
 * `peaks` (may be NULL) receives the waveform overview of the audio
 * decoded (of the mix that is encoded: both channels of a stereo MP3).
 * Errors: SFS_UNSUPPORTED ("unsupported or unrecognised audio format")
 * not audio or a format libsndfile cannot read; SFS_INVALID bad options,
 * or "corrupt audio data: ..." (a damaged header, or decoding failing
 * mid-stream); SFS_NO_SPACE and SFS_TOO_LARGE from the stage; SFS_IO when
 * reading fails. On failure the stage holds a partial MP3: discard it.
 */
enum sfs_status sfs_audio_encode(int in_fd, struct sfs_stage *out,
				 const struct sfs_audio_opts *o,
				 struct sfs_peaks *peaks,
				 int (*progress)(void *arg), void *arg,
				 struct sfs_err *e) SFS_MUST_CHECK;

#endif
