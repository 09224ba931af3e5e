"""WeaveWave captioner: any mix of text, images, video and audio in, a `MusicBrief` out (vLLM)."""
