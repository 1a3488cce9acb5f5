// The KeyStore contract on the in-memory Keyspace (the default, and the simulation's).
import { Keyspace } from '../../store/kv/keyspace.js';
import { keyStoreCases } from './keystore.case.js';

keyStoreCases('in-memory Keyspace', () => new Keyspace());
