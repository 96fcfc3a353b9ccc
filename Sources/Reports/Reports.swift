// Reports: placeholder until aggregation lands.
