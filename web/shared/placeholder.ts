// Browser code lives under web/; TODO(issue 7) replaces this file.
export {};
