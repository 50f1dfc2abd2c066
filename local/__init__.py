"""The local deployment: Selfnest and BabyBloom deployed into emulators on this machine (`make up`)."""
