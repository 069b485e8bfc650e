"""Outbreak detection for public health: detectors identical to R ``surveillance``, node-side
syndromic and pharmacy signals, hub-side series, alerts and plots."""
