// Registers every rule family. Each family file calls registerRules with its rules.
import './prune';
import './shared';
import './sparse';
import './expand';
import './fuse';
import './plan';
