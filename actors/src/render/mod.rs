//! Rendering of channel HTML pages into frames in headless Chromium (in progress).
