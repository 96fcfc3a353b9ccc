// Recorder: placeholder until the engine lands.
