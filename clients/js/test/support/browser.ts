// SPDX-License-Identifier: Apache-2.0
// Headless Debian Chromium for browser tests, driven by playwright-core (never
// a browser downloaded by a test tool). $CHROMIUM overrides the path.
import { chromium, type Browser } from 'playwright-core';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

// The machine has no route to the internet: without the background-networking
// flags Chromium keeps trying to reach Google's hosts.
const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, args: flags, headless: true });
}
